"""python -m guest_image build [--out DIR] [--force]

Builds the tiny test guest into DIR (default build/guest) and its OCI images into
DIR/../oci; does nothing when they are up to date."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guest_image import layout
from guest_image.build import build
from guest_image.debian_kernel import KernelError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m guest_image", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="build the guest and its OCI images (idempotent)")
    build_cmd.add_argument("--out", type=Path, default=layout.DEFAULT_OUT, help=f"output directory [{layout.DEFAULT_OUT}]")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even when the outputs are up to date")
    args = parser.parse_args(argv)

    try:
        result = build(layout.Outputs(args.out.resolve()), force=args.force)
    except (KernelError, RuntimeError) as exc:
        print(f"guest_image: {exc}", file=sys.stderr)
        return 1
    if not (result.rebuilt_files or result.repackaged_images):
        print(f"guest_image: {result.outputs.out} is up to date ({result.stamp.inputs['kernel']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
