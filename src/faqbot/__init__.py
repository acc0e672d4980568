"""faqbot: a bilingual (zh/en) FAQ chatbot for the MindSpore documentation."""

__version__ = "0.1.0"
