"""The VMI spec as libvirt domain XML: one module per part of the virtual hardware."""
