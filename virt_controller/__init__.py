"""virt-controller: level-triggered controllers for VMs, VMIs, replica sets and
migrations (informers, rate-limited work queues, expectations, leader election)."""
