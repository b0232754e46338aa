"""virtctl: the kubevirt.io command line (start, stop, restart, migrate, pause,
unpause, console, create vm), talking to the cluster the way kubectl does."""

from importlib.metadata import PackageNotFoundError, version


def client_version() -> str:
    try:
        return version("kubevirt-py")
    except PackageNotFoundError:
        return "unknown"
