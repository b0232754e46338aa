"""Kubernetes client plumbing shared by every component and virtctl: finding the
kubeconfig the way kubectl does and building API clients from it."""
