"""faqbot: a bilingual (zh/en) FAQ chatbot for any team's FAQ (the bundled corpus config: corpora/*.toml)."""

__version__ = "0.1.0"

# No process-wide settings here. faqbot sets no OpenMP variable: the embedder's pool decides how many threads a
# call uses (faqbot.embed.InstancePool), and a user's own OMP_* settings apply as given.
