"""gRPC plumbing shared by every component: servers with health and reflection,
unix sockets with safe permissions, and contract version negotiation."""
