"""Self-supervised relative depth on frame triplets (Monodepth2-style), see the README."""
