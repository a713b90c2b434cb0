"""Pattern rules keyed to what an attack is for, not to how it is phrased: getting a stranger remote
access, making the assistant comply without checking, steering its default answers, lifting its
safety behaviour, pointing a person's records or payments somewhere else, relaxing a health safety
constraint, and conditions keyed to a message prefix.

Written after the attacks of red-team round 5 had been read (see docs/SECURITY.md): each rule names
the attacker's goal broadly enough to cover wordings beyond the one that prompted it, and several are
weighted so that they quarantine only content from less trusted writers (a user may say it of
themselves; a web page or tool output saying it is suspicious)."""

from __future__ import annotations

from engram.guard.rules import AI, PatternRule, rule

_REMOTE_TOOLS = (r"(?:anydesk|teamviewer|ultraviewer|supremo|logmein|quick\s*assist|rustdesk|screenconnect|"
                 r"remote\s+desktop)")
_SUPPORT = r"(?:support|helpdesk|help\s+desk|technician|tech\s+team|service\s+desk|refund\s+(?:desk|team))"
_AI_HELPER = (r"(?:ai|automated|virtual|digital|smart|robot)\s+"
              r"(?:helpers?|assistants?|agents?|secretar(?:y|ies)|readers?|tools?|systems?)")

INTENT_RULES: tuple[PatternRule, ...] = (
    # --- Tech-support scams: a "support" party connecting remotely.
    rule("remote_access", 0.6,
         rf"\b(?:call|ring|phone|contact|dial)\b[^.\n]{{0,60}}?\b{_SUPPORT}\b[^.\n]{{0,100}}?"
         rf"\b(?:{_REMOTE_TOOLS}|connect\s+remotely|remote(?:ly)?\s+(?:access|control|connect|session))"),
    rule("remote_access", 0.3, rf"\b(?:let|allow|give)\s+(?:them|him|her|someone|a\s+stranger)\b[^.\n]{{0,30}}?"
                               rf"\b(?:connect|log\s+in|access)\w*\s+(?:remotely|with\s+{_REMOTE_TOOLS})"),
    # --- Compliance without checking.
    rule("blind_compliance", 0.5,
         r"\b(?:do|follow|execute|carry\s+out|obey)\s+(?:whatever|everything|anything)\s+(?:it|they|he|she|the\s+\w+)\s+"
         r"(?:says?|asks?|requests?|tells?\s+you)\b"
         r"|\bwithout\s+(?:double-?\s*checking|second-?guessing|questioning|verifying|a\s+second\s+look)\b"
         r"|\b(?:should|must|are\s+to|is\s+to)\s+be\s+(?:fulfilled|executed|honou?red|actioned|carried\s+out)\s+"
         r"(?:immediately|right\s+away|at\s+once|without)", negatable=True),
    # --- Addressing an AI reader, conditionally or by a descriptive name.
    rule("addresses_ai_reader", 0.65,
         rf"\bif\s+you(?:\s+are|['’]re)\s+(?:an?\s+)?(?:automated\s+|ai\s+|artificial\s+|virtual\s+|digital\s+)?"
         rf"(?:{AI}|system|program|assistant)\b"
         rf"|\b(?:note|message|instructions?|reminder|memo|p\.?s\.?)\s+(?:to|for)\s+(?:the\s+|any\s+|your\s+)?"
         rf"(?:[\w']+\s+){{0,2}}?{_AI_HELPER}\b"),
    # --- Steering the assistant's own future answers.
    rule("future_self_note", 0.45,
         r"\b(?:note|reminder|memo|message)\s+(?:to|for)\s+(?:my\s+)?future\s+(?:me|self|myself|sessions?|instances?)\b"),
    rule("default_answer", 0.45,
         r"\b(?:keep|make|use|set|treat)\s+(?:it|this|that|them|[\w' -]{1,40}?)\s+as\s+(?:the|my|your|our)\s+"
         r"(?:default|standard|go-to|first)\s+(?:answer|recommendation|response|reply|suggestion|choice|pick)\b"
         r"|\bdefault\s+(?:answer|recommendation|response|reply)\s+(?:to|for)\s+(?:all\s+|any\s+|every\s+)?[\w-]+\s+"
         r"(?:questions?|queries|requests?)"),
    rule("ai_obligation", 0.6,
         r"\b(?:assistants|ais|agents|chatbots|bots|llms|ai\s+(?:assistants|agents|systems|tools|models))\b[^.\n]{0,60}?"
         r"\b(?:must|shall|are\s+required\s+to|have\s+to|need\s+to|should)\s+(?:always|never|only)\s+"
         r"(?:recommend|mention|suggest|say|tell|share|answer|respond|refer|promote|use|link|direct|reply|send)\b"),
    # --- Lifting the assistant's safety behaviour.
    rule("refusal_removal", 0.5,
         r"\bno\s+(?:warnings|refusals|disclaimers|caveats|safety\s+notes)\s*(?:,|and|or)\s*(?:no\s+)?"
         r"(?:warnings|refusals|disclaimers|caveats|lectures|questions)\b"
         r"|\byour\s+(?:guidelines|rules|instructions|restrictions|policies|safety\s+rules)\s+(?:were|are|was|is)\s+"
         r"(?:written|meant|made|designed|intended)\s+for\s+(?:a\s+different|another|other|some\s+other)\b"),
    rule("refusal_removal", 0.3, r"\b(?:relaxed|looser|lenient|unrestricted)\s+(?:rules|mode|policy|guidelines)\b"),
    # --- Answering about one person or thing from another one's records.
    rule("record_redirect", 0.5,
         r"\banswer\s+(?:any\s+|all\s+)?(?:questions?|queries|requests?)\s+about\s+[^.\n]{1,40}?\s+(?:from|using|with|"
         r"based\s+on)\s+(?:the\s+)?[^.\n]{1,40}?\b(?:records?|file|account|data|profile|history)\b"
         r"|\b(?:that's|that\s+is|this\s+is)\s+the\s+(?:one|account|record|file|number|plate|profile)\s+to\s+"
         r"(?:check|use|look\s+up|consult)\s+(?:whenever|when|every\s+time|any\s+time)\b"),
    rule("record_redirect", 0.3,
         r"\b(?:merged|linked|moved|combined|filed)\s+[^.\n]{0,40}?\b(?:file|records?|profile)\s+(?:with|into|under)\b"),
    # --- Payments and accounts pointed somewhere new.
    rule("payment_redirect", 0.4,
         r"\b(?:rent|payments?|deposits?|invoices?|bills?|salary|transfers?|refunds?|fees?|dues)\s+(?:now\s+|should\s+|"
         r"must\s+|will\s+)?(?:goes?|go|be\s+sent|be\s+paid|are\s+(?:sent|paid|made)|is\s+(?:sent|paid|made))\s+"
         r"(?:now\s+)?(?:to|through|via|into)\s+(?:their|the|a|my|our)?\s*(?:new|updated|different|other)\b"),
    rule("fabricated_agreement", 0.4,
         r"\b(?:we've|we\s+have|we)\s+(?:already\s+)?(?:gone|been)\s+over\s+(?:this|that|it)\b"
         r"|\byou\s+(?:already\s+|previously\s+)?agreed\b|\b(?:as|like)\s+we\s+(?:agreed|settled|established)\b"),
    # --- Health safety constraints relaxed (a user may say it of themselves; a portal or page should not).
    rule("safety_relaxation", 0.45,
         r"\b(?:allerg\w*|intoleran\w*|medications?|medicines?|dose|dosage|prescriptions?|diagnosis)\b[^.\n]{0,80}?"
         r"\b(?:(?:was|is|has\s+been)\s+ruled\s+out|no\s+longer\s+(?:needs?\s+to\s+be\s+avoided|an\s+issue|applies|a\s+concern|"
         r"necessary|required)|(?:is|are)\s+(?:now\s+|perfectly\s+|completely\s+)?safe\s+(?:to|for)|"
         r"(?:double|triple|quadruple)\s+(?:the|your|her|his|their)\s+dose)"),
    # --- Destroying the operating system's own files.
    rule("destructive_command", 0.6,
         r"\b(?:delete|remove|erase|wipe|clear)\s+(?:everything|all(?:\s+(?:the\s+)?files)?|the\s+contents?|the\s+folder)\s+"
         r"(?:in|from|of|inside)\s+[\"']?(?:c:\\+windows|/etc\b|/usr\b|/bin\b|/boot\b|[^.\n]{0,20}?system32)"),
    # --- Behaviour keyed to how a message starts (a backdoor trigger).
    rule("trigger_conditional", 0.55,
         r"\b(?:messages?|requests?|texts?|emails?|commands?|instructions?)\s+(?:that\s+)?(?:starts?|starting|begins?|"
         r"beginning|prefixed|opening|ends?|ending)\s+(?:with\s+)?[\"'“‘]?[^.\n]{1,40}?[\"'”’]?\s*,?\s*"
         r"(?:(?:come|comes|are|is)\s+(?:from|really|actually|trusted|authori[sz]ed|approved|legit)|it's\s+(?:me|really|"
         r"actually)|should\s+be|must\s+be|means?\b|=|->)"),
)
