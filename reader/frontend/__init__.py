"""The front end: text -> analysed sentences (document, normalisation, syntax, pronunciation, prosody plan)."""
