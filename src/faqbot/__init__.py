"""faqbot: a bilingual (zh/en) FAQ chatbot for the MindSpore documentation."""

__version__ = "0.1.0"

# No process-wide settings here: the OpenMP wait setting the embedding engine needs is applied where the engine
# loads, and only when the user has set none of their own (faqbot.embed.engine_openmp_env).
