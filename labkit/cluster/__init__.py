"""The Kubernetes cluster on the lab VM(s): what cluster.init/status/reset need, minus the tasks.

    kubeadm     the kubeadm configuration, rendered from settings (pure)
    node        commands run on a node over SSH, and the decisions taken from their answers
    kubeconfig  the admin kubeconfig, rewritten for the laptop
    health      readiness of nodes, CoreDNS and Weave Net (readers from labkit.kube.objects); waiting; hints
    status      the tables cluster.status prints
"""
