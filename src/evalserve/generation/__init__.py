"""Generation as a library: the `/predict` contract and the `/generate` summary."""
