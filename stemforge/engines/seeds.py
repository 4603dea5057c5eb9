"""Per-stem seeds. Pure: no torch.

Every stem draws from its own generator, seeded from the request seed and the stem type, so a
stem is the same whatever it was batched with, and two stems of one request differ.
"""

import hashlib


def stem_seed(request_seed: int, stem: str) -> int:
    """A stable 63-bit seed (``hash()`` is salted per process, so a real digest it is)."""
    digest = hashlib.blake2b(f"{request_seed}:{stem}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1
