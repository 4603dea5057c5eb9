"""Helpers the test suite shares: real external services started on loopback for a test session."""
