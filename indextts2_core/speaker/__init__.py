"""Speaker style: CAMPPlus."""
