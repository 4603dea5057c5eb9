"""Pure music: chord symbols, the song plan and the parts each stem plays. No I/O, no Ray."""
