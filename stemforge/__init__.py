"""stemforge: music stems from a prompt and musical conditioning, served as a Ray Serve graph."""
