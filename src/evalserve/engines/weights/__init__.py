"""Model weights on disk: the bundled GGUF, local directories, the converted-model cache, and
`evalserve download` (build-time fetch; nothing downloads at run time)."""
