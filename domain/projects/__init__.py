"""Projects: the top of the ADR's project / task / tag hierarchy."""
