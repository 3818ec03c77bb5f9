"""Books in: an EPUB, a Markdown or a plain-text book made into an editable script
(`Title:`/`Author:` lines and one `# Chapter` heading per chapter)."""
