"""The buckets of every phase-transition histogram, VMI and migration alike: upstream's
PhaseTransitionTimeBuckets, half a second to an hour."""

from __future__ import annotations

PHASE_TRANSITION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600)
