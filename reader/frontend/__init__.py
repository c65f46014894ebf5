"""The front end: text -> analysed sentences, the typed input of every later stage.

document, epub (input files into chapters, paragraphs, sentences) -> normalize (each sentence into
speakable words, by token kind) -> syntax (parse, syntactic distance) -> pronounce, compiled_cmudict,
g2p (words into phonemes) -> prosody (the prosody plan: a break level and reset at every word gap)
-> analysis (all of it as a SentenceAnalysis per sentence). reader.model_inputs turns those into the
acoustic model's arrays.
"""
