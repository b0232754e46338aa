"""virt-api: the subresources under /apis/subresources.kubevirt.io/v1 (start, stop,
restart, migrate, pause, unpause, console, ...) and the admission webhooks for the
four kubevirt.io kinds."""
