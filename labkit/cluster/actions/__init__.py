"""The steps of cluster.init, cluster.join and cluster.reset, one file each (kind's actions/*).

A step is a labkit.steps.Step: title, describe() for --dry-run, run(ctx). The plans below are the only
place that says which steps a task runs and in which order; the dry-run prints the same list.
"""
from __future__ import annotations

from labkit.cluster.actions.api_wait import WaitForApi
from labkit.cluster.actions.join import join_steps
from labkit.cluster.actions.kubeadm_init import KubeadmInit
from labkit.cluster.actions.kubeconfig import ExportKubeconfig
from labkit.cluster.actions.nodes import CheckNodes
from labkit.cluster.actions.ready import WaitReady
from labkit.cluster.actions.reset import ForgetKubeconfig, ResetNode
from labkit.cluster.actions.taint import MasterTaint
from labkit.cluster.actions.weave import InstallWeave


def init_plan(settings) -> list:
    return [KubeadmInit(settings), ExportKubeconfig(settings), WaitForApi(), CheckNodes(), MasterTaint(settings),
            InstallWeave(settings), *join_steps(settings, settings.workers), WaitReady()]


def join_plan(settings, workers) -> list:
    return [WaitForApi(settings.master.name), CheckNodes(), *join_steps(settings, workers)]


def reset_plan(settings) -> list:
    order = [n for n in settings.nodes if n.role != "master"] + [n for n in settings.nodes if n.role == "master"]
    return [*(ResetNode(n) for n in order), ForgetKubeconfig()]
