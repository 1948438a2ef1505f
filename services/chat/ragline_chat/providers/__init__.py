"""Chat model providers: extractive, local (llama.cpp), OpenAI(-compatible), Anthropic."""
