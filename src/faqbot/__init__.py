"""faqbot: a bilingual (zh/en) FAQ chatbot for any team's FAQ (the bundled corpus config: corpora/*.toml)."""

import os

__version__ = "0.1.0"

# The embedding engine and FAISS use OpenMP. With the default "active" wait policy an OpenMP thread spins on a
# core that another request or process needs, and on a busy 2-core machine one query embedding was measured at
# 1.6 s instead of 20 ms. Set before either library loads; an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
