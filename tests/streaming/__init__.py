"""Tests of stemforge.streaming: the Ray-free pieces of streaming generation."""
