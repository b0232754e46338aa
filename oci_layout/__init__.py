"""OCI image layouts on local disk: references, the store images are "pulled" from, and
unpacking into root filesystems that cannot be escaped. Shared by the process kubelet
(container images) and virt-launcher (containerDisk and kernel-boot images)."""
