"""Release audit (manifest with lineage and hashes) and the promotion briefing."""
