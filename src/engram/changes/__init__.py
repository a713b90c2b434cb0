"""The language of facts that change, shared by the write path (``engram.write.supersede`` closes a stale
fact) and the read path (``engram.read.replaced`` prefers the current one): attribute statements
(``slots``), the cues of a change or of co-existence (``cues``), what makes two turns a pair to compare
(``pairs``), and the kind of value a question asks for and whether a newer turn gives it another (``values``)."""
