"""The lab's application: the inventory image built in the VM, and the manifests applied to the cluster.

    dockerssh  the VM's Docker daemon from the laptop, through SSH (paramiko + `docker system dial-stdio`)
    build      the trash-can/inv image: context digest, base-image check, streamed build
    objects    manifests/ as API objects, with image names from settings
    apply      create-or-update through the API door (labkit.kube)
    rollout    waiting for the rollout and the pods, and explaining a timeout
"""
