"""Streaming's Ray-free building blocks: audio as it is generated, before any stem is stored.

- :mod:`stemforge.streaming.pcm`: float chunks to the stored WAV's exact 16-bit samples, and a
  WAV header for a stream of unknown length (``GET /generate/{id}/stream``);
- :mod:`stemforge.streaming.sse`: the Server-Sent Events wire format (``GET /generate/{id}/events``);
- :mod:`stemforge.streaming.hub`: :class:`~stemforge.streaming.hub.StreamHub`, the in-memory
  broker between one job's producers and its many listeners (one per replica, one event loop).
"""
