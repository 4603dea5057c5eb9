"""What the diffusion engines (Stable Audio, AudioLDM 2, Riffusion) share: windows on the bar
grid, a row per stem and window, pipeline calls, seeds, alignment, loudness. Importing it imports
neither torch nor diffusers."""
