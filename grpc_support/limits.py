"""Channel and server options every component uses."""

from __future__ import annotations

# A VMI travels as JSON and a domain XML can be large; 4 MiB (gRPC's default) is
# too tight for big specs, unbounded would let one peer exhaust our memory.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024

OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
