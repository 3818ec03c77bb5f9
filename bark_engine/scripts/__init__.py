"""Long scripts: parsing (segments, speakers, pauses), sentence splitting and
estimates (no torch), and rendering a script segment by segment, resumably."""
