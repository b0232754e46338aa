"""The tiny test guest: a Debian kernel, a busybox initramfs and a bootable disk,
built offline and reproducibly, and packaged as OCI images in the local image store.

Every test that boots a real guest boots this one, so it is small (it boots in about
five seconds under TCG), self-describing (fixed marker lines on the serial console,
see `markers`) and driven entirely by cloud-init data (NoCloud or ConfigDrive).

Build (build.sh does it on every run; a no-op when up to date):

    .venv/bin/python -m guest_image build [--out DIR] [--force]

Outputs (`layout`), DIR defaulting to build/guest:

- DIR/vmlinuz, DIR/initramfs.cpio.gz: for direct kernel boot; pass console=ttyS0.
- DIR/disk.img: 64 MiB raw, MBR + FAT16 + syslinux, boots under SeaBIOS from any bus
  with "console=ttyS0". Never boot it writable: use a copy or a qcow2 overlay.
- DIR/../oci (an OCI image layout): kubevirt-py/tiny-guest:latest (containerDisk,
  /disk/disk.img) and kubevirt-py/tiny-guest-kernel:latest (/boot/vmlinuz,
  /boot/initramfs.img, for spec.domain.firmware.kernelBoot.container).
- DIR/../cache: the downloaded kernel .deb, so later builds need no network.

What the guest does is described in `init_script`: in short, user-data that starts
with "#!" runs with sh (output on the console), the data source is mounted at
/run/datasource, other disks with a filesystem at /mnt/<device> (e.g. /mnt/vdb),
every NIC gets DHCP in the background, and the ACPI power button powers it off.
"""
