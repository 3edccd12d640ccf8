"""The in-process engine on transformers + torch: continuous batching, prefix caching, xgrammar
constraints. Imported only when `ENGINE=transformers` is selected (it pulls in torch)."""
