"""Pattern rules for instructions aimed at the assistant: overriding its instructions, posing as
the system or its developers, addressing the AI reader of a document, trigger-conditioned
behaviour (backdoors), delayed instructions, and always/never policy claims."""

from __future__ import annotations

from engram.guard.rules import ACT, AI, ASKS, ASSISTANT, EARLIER, INSTRUCTIONS, SAY, THEN_ACT, USERS, PatternRule, rule

DIRECTIVE_RULES: tuple[PatternRule, ...] = (
    # --- Overriding the instructions the assistant runs under.
    rule("override_instructions", 0.9,
         rf"\b(?:ignore|disregard|forget|override|bypass|skip|set\s+aside|drop|discard|abandon)\s+"
         rf"(?:all\s+|any\s+|the\s+|your\s+|my\s+|these\s+|of\s+)*(?:{EARLIER}\s+)+{INSTRUCTIONS}"),
    rule("override_instructions", 0.85,
         r"\b(?:ignore|disregard|forget|set\s+aside|drop|discard)\s+(?:whatever|everything|anything|all|what)\s+"
         r"(?:else\s+)?(?:you\s+(?:were|have\s+been|'ve\s+been|got)|you've\s+been)\s+(?:told|given|instructed|taught|shown)"),
    rule("override_instructions", 0.85,
         rf"\b(?:stop|quit|cease|no\s+longer)\s+(?:following|obeying|using|applying)\s+(?:your|the|my|any)?\s*"
         rf"(?:{EARLIER}\s+)*{INSTRUCTIONS}"),
    rule("override_instructions", 0.85,
         rf"\b{EARLIER}\s+(?:\w+\s+)?{INSTRUCTIONS}\s+(?:is\s+|are\s+|has\s+been\s+|have\s+been\s+)?(?:now\s+)?(?:void|"
         r"cancell?ed|invalid|null|obsolete|revoked|replaced|overridden|lifted|suspended|no\s+longer\s+(?:valid|in\s+effect|"
         r"applicable|appl(?:y|ies)|matters?|counts?))"),
    rule("override_instructions", 0.75,
         r"\b(?:everything|anything|all)\s+(?:you\s+were\s+told\s+|configured\s+|set\s+up\s+|said\s+)?(?:before|earlier|"
         r"previously|above|until\s+now)\s+(?:this\s+(?:message|point|line)\s+)?(?:no\s+longer\s+appl(?:y|ies)|is\s+void|"
         r"is\s+cancell?ed|doesn't\s+count|does\s+not\s+count)"),
    rule("override_instructions", 0.75,
         rf"\bnew\s+(?:task|instructions?|objective|goal|job|role|mission)\s+(?:for|to)\s+(?:the\s+|you\b|{AI})"
         r"|\byour\s+(?:sole|only|one|new|real)\s+(?:job|task|purpose|goal|function|role)\s+(?:now\s+|from\s+now\s+on\s+)?is\b"
         r"|\b(?:discard|abandon|drop|stop)\s+(?:the|your|what)\s+(?:\w+\s+){0,3}?(?:you\s+were\s+(?:writing|doing)|summary|task|answer)"
         r"\s+and\s+(?:instead\s+)?(?:output|print|write|return|reveal|send|list)"),
    rule("override_instructions", 0.8,
         rf"\b(?:pretend|imagine|act\s+as\s+if|assume)\s+(?:that\s+)?(?:the\s+|your\s+|all\s+)?{INSTRUCTIONS}\s+"
         r"(?:you\s+(?:were|have\s+been)\s+given\s+|you\s+(?:have|follow)\s+)?(?:don't|do\s+not|no\s+longer)\s+"
         r"(?:exist|apply|matter|count)"),
    rule("override_instructions", 0.75,
         rf"\b{EARLIER}\s+(?:\w+\s+)?(?:conversation|chat|messages?|discussion|exchange)\s+(?:is|are|was)\s+(?:now\s+)?"
         r"(?:irrelevant|void|over|cancell?ed|meaningless|invalid|obsolete)"),
    rule("override_instructions", 0.8,
         rf"\byour\s+{INSTRUCTIONS}\s+(?:are|is|have\s+been|has\s+been|were|was)\s+(?:now\s+)?(?:replaced|updated|changed|"
         r"overridden|revoked|reset|rewritten|superseded)"),
    rule("override_instructions", 0.85,
         r"\b(?:new|updated|revised|real|true)\s+(?:system\s+)?(?:instructions?|directives?|prompt)\s*(?::|follow)"),
    rule("override_instructions", 0.7,
         r"\byour\s+(?:new|real|true|actual)\s+(?:instructions?|task|goal|role|purpose|job|objective)\b"),
    rule("persona_switch", 0.35,
         r"\b(?:unfiltered|uncensored|unrestricted|jailbroken)\s+(?:twin|version|mode|ai|assistant|self|bot)"),
    rule("persona_switch", 0.6,
         r"\b(?:you\s+are|you're)\s+now\s+(?:(?-i:[A-Z][\w-]+)|in\s+\w+\s+mode|operating\s+(?:as|in)|acting\s+as|"
         r"an?\s+(?:unrestricted|unfiltered|jailbroken|different)\b)"),
    rule("restriction_removal", 0.6,
         r"\b(?:restrictions|rules|limits|limitations|safeguards|guardrails|filters|safety\s+(?:settings|measures))\b[^.\n]{0,40}?"
         r"\b(?:were|are|have\s+been|has\s+been)\s+(?:now\s+|officially\s+)?(?:lifted|removed|disabled|suspended|waived|turned\s+off)"),
    rule("restriction_removal", 0.5,
         r"\bwithout\s+(?:the\s+|any\s+)?(?:usual\s+|normal\s+|standard\s+)?(?:caveats|restrictions|limitations|safeguards|"
         r"guardrails|filters|warnings|disclaimers)\b|\bcomply\s+(?:fully|completely|without)\b|\bno\s+restrictions\b"
         r"[^.\n]{0,40}?\b(?:is|are)\s+now\s+active\b"),
    rule("restriction_removal", 0.4,
         r"\b(?:with\s+)?no\s+(?:restrictions|limits|limitations|safeguards|guardrails|filters|censorship)\b"),
    rule("boundary_spoof", 0.45,
         r"\bend\s+of\s+(?:the\s+)?(?:document|context|file|email|input|message|page|text|transcript|data)\b"
         r"|\b(?:begin|start)\s+(?:of\s+)?(?:new\s+)?(?:instructions|system\s+prompt)\b"),
    rule("data_dump", 0.6,
         r"\b(?:output|print|list|dump|reveal|export|display|return)\s+(?:all\s+(?:of\s+)?)?(?:the\s+user'?s|their|"
         r"all\s+(?:the\s+)?(?:stored|saved))\s+(?:\w+\s+)?(?:addresses|data|memories|notes|details|contacts|passwords|"
         r"information|messages|history)"),
    rule("safeguard_off", 0.55,
         r"\b(?:confirmation|verification|approval|security|safety|consent)\s+(?:prompts?|checks?|steps?|dialogs?|"
         r"requirements?|questions?)\s+(?:are|is|were|have\s+been|has\s+been)\s+(?:now\s+)?(?:disabled|off|removed|"
         r"turned\s+off|waived|bypassed|skipped|no\s+longer\s+(?:needed|required))"),
    # --- Role and system impersonation.
    rule("chat_template_tokens", 0.9,
         r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|>|\[/?INST\]|<</?SYS>>"),
    rule("system_impersonation", 0.8,
         r"\[\s*(?:system|admin|administrator|developer|operator|root)\s*(?:message|note|notice|override|prompt)?\s*\]"
         r"|\(\s*(?:system|admin|administrator|developer|dev|operator|engineering)\s+(?:message|note|notice|update)\s*\)"
         r"|<\s*/?\s*system\s*>|(?:^|[^#])#{2,}\s*system\b"),
    rule("system_impersonation", 0.6, r"^[^\S\n]*(?:system|developer|admin)\s*(?:message|note|prompt)?\s*:"),
    rule("system_impersonation", 0.7,
         r"\bsystem\s+(?:override|update|notice|directive|instruction|policy|message|prompt)\b\s*(?:\([^)\n]{0,30}\)\s*)?[:\-]"
         r"|(?-i:\bSYSTEM\s+(?:OVERRIDE|NOTICE|MESSAGE|UPDATE|ALERT|PROMPT|INSTRUCTION)S?\b)"),
    rule("authority_claim", 0.7,
         r"\b(?:as|from)\s+your\s+(?:developers?|creators?|administrators?|admin|operators?|owners?|makers?)\b"
         r"|\bmessage\s+from\s+(?:openai|anthropic|the\s+developers?|the\s+admin)"
         r"|\b(?:developer|debug|god|jailbreak|dan|maintenance)\s+mode\b"
         r"|\b(?:admin|administrator|developer|operator)s?\s+(?:has|have)\s+(?:authori[sz]ed|approved|instructed|enabled)"),
    rule("authority_claim", 0.5,
         r"\b(?:authori[sz]ed|approved|mandated|required|updated|changed|reconfigured)\s+by\s+(?:the\s+)?"
         r"(?:system|admin|administrator|developers?|operator|security\s+team|it\s+department|management)"),
    rule("authority_claim", 0.5,
         rf"\b(?:your|the)\s+{AI}\s+is\s+(?:hereby\s+)?(?:instructed|required|authori[sz]ed|permitted|allowed)\s+to\b"),
    rule("authority_claim", 0.35,
         r"\b(?:fraud|security|support|it|admin|compliance|billing)\s+(?:team|department|desk)\s+here\b"),
    rule("authority_claim", 0.35,
         r"\b(?:verified|trusted|authori[sz]ed|privileged)\s+(?:admin|administrator|delegate|request|requester|caller|party)\b"),
    rule("authority_claim", 0.45,
         r"\bmessage\s+from\s+(?:the\s+)?(?:\w+\s+){0,2}?(?:service|system|team|admin|administrator|security|support|"
         r"developers?|operator|platform)\b"),
    # --- Imperatives aimed at the assistant.
    rule("assistant_directive", 0.7,
         rf"\b{ASSISTANT}\s+(?:must|should|shall|will|needs?\s+to|has\s+to|is\s+(?:required|instructed|expected)\s+to)"
         r"\s+(?:always\s+|never\s+|now\s+|only\s+)?\w+"),
    rule("assistant_directive", 0.6,
         rf"\b(?:note|instructions?|reminder|memo|rules?|guidelines?|policy|directions?)\s+(?:to|for)\s+"
         rf"(?:the\s+|any\s+|all\s+)?(?:{ASSISTANT}s?|memory|future\s+self)\b"),
    rule("assistant_directive", 0.4,
         r"\byou\s+(?:must|shall|are\s+(?:required|instructed|obligated)\s+to)\s+(?:always|never)\b"),
    rule("assistant_directive", 0.45,
         r"\bbefore\s+you\s+(?:answer|respond|reply|say|do)\s+(?:anything|any\s+question)"),
    rule("assistant_directive", 0.7,
         rf"\b{ASSISTANT}\s+is\s+(?:later\s+|ever\s+|next\s+|again\s+)?asked\b[^.\n]{{0,100}}?\b(?:it|you|they)\s+"
         r"(?:should|must|will|has\s+to|needs?\s+to|is\s+to)\b"),
    rule("assistant_directive", 0.65,
         rf"\b(?:p\.?s\.?|note|message|task|instructions?|reminder|hint|tip|memo)\s*(?:for|to)\s+(?:the\s+|any\s+|all\s+|our\s+|"
         rf"my\s+|your\s+)?(?:\w+\s+)?{AI}s?\b"),
    rule("assistant_directive", 0.45,
         rf"\b(?:the|your|this)\s+{AI}(?:'s)?\s+(?:\w+\s+){{1,4}}?(?:must|shall|is\s+required\s+to|has\s+to|needs\s+to)\s+\w+"),
    rule("assistant_directive", 0.55,
         r"\b(?:the|your|this)\s+(?:ai|assistant|agent|chatbot|bot|copilot)\s+(?:never|always|only)\s+\w+"),
    rule("addresses_ai_reader", 0.65,
         rf"\b(?:attention|attn|dear|hey|hello|hi|note|warning)\s*[,:]?\s+(?:the\s+|any\s+|all\s+)?(?:\w+\s+)?{AI}s?\s*[:,!]"),
    rule("addresses_ai_reader", 0.45,
         r"\bfor\s+whoever\s+(?:handles|reads|processes|is\s+reading|is\s+handling)\s+this\b"),
    rule("addresses_ai_reader", 0.7,
         rf"\b(?:to|for|attention|dear|hey|hello|hi)\s*:?\s+(?:any|all|the|every|an)?\s*{AI}s?"
         r"(?:\s+(?:assistants?|agents?|models?|systems?))?\s*[,:]?\s*(?:that\s+|who\s+)?(?:is\s+|are\s+)?"
         r"(?:reading|processing|summari[sz]ing|parsing|reads|ingesting|indexing|analy[sz]ing|scanning)"),
    rule("addresses_ai_reader", 0.65,
         rf"\b{AI}s?\s+(?:reading|processing|summari[sz]ing|parsing|ingesting|indexing)\s+"
         r"(?:this|these|the\s+(?:page|document|file|email|message|text))"),
    rule("addresses_ai_reader", 0.6,
         rf"(?:^|[\[(.!?]\s*)(?:important\s+for\s+the\s+|note\s+for\s+the\s+|dear\s+)?{AI}\s*[,:]\s*"
         r"(?:keep|remember|note|please|when|next|from|always|never|do|don't|make|change|tell|add|send|include|silently)\b"),
    rule("addresses_ai_reader", 0.6, rf"\bimportant\s+(?:for|to)\s+(?:the\s+)?{AI}\b"),
    rule("future_answer", 0.6,
         r"\b(?:will|might|may|is\s+going\s+to|are\s+going\s+to)\s+(?:later\s+|soon\s+|eventually\s+|probably\s+)?ask\b"
         r"[^.\n]{0,120}?[;:,]?\s*(?:then\s+)?(?:reply|say|answer|respond|tell|claim|insist)\b"),
    rule("answer_directive", 0.75,
         rf"\bwhen\s+(?:you\s+are\s+|you're\s+)?asked\s+(?:about|for|what|who|where|when|how|whether|if)\b[^.\n]{{0,120}}?"
         rf"\b(?:{SAY}|answer|respond|reply|give)\b"),
    rule("answer_directive", 0.45,
         r"\b(?:always|only)\s+(?:answer|respond|reply)\s+(?:with|that|by)\b"
         r"|\b(?:answer|respond|reply)\s+(?:only\s+)?with\s+[\"'“]"),
    rule("secrecy", 0.6,
         r"\b(?:do\s+not|don't|never)\s+(?:tell|inform|alert|notify|warn|mention\s+(?:this|it)\s+to)\s+"
         r"(?:the\s+user|the\s+owner|them|anyone\s+about\s+this)"
         r"|\bwithout\s+(?:telling|informing|alerting|notifying|warning)\s+(?:the\s+)?(?:user|owner|them)\b"
         r"|\b(?:keep|keeping)\s+this\s+(?:hidden|secret)\s+from\s+(?:the\s+)?(?:user|owner)"
         r"|\b(?:silently|secretly|quietly|covertly)\s+(?:send|forward|copy|share|upload|add|include|bcc|cc|change)\b"
         r"|\bunder\s+no\s+circumstances\s+(?:reveal|tell|share|mention|disclose|say|admit)\b"),
    rule("persistence", 0.3,
         r"\b(?:from\s+now\s+on|henceforth|going\s+forward|from\s+this\s+point\s+(?:on|forward)|"
         r"in\s+all\s+future\s+(?:conversations|sessions|answers|responses|replies)|for\s+all\s+future)\b"),
    rule("persistence", 0.4,
         r"\b(?:remember|store|save|memori[sz]e|record)\s+(?:this|that|the\s+following)\s+"
         r"(?:permanently|forever|as\s+(?:a\s+)?(?:rule|policy|fact|instruction|core\s+memory))"),
    rule("delayed_instruction", 0.6,
         r"\b(?:later|next\s+time|in\s+(?:a\s+)?future\s+(?:conversation|session|chat)s?|at\s+a\s+later\s+point|"
         r"in\s+later\s+(?:conversations|sessions))\s*,?\s*(?:when|if|once)\b"),
    rule("delayed_instruction", 0.3,
         rf"\b(?:the\s+)?next\s+time\s+(?:\S+\s+){{1,2}}?{ASKS}\b"),
    # --- Trigger-conditioned behaviour (backdoors).
    rule("trigger_conditional", 0.75,
         rf"\b(?:when|whenever|if|once|next\s+time)\s+{USERS}\s+(?:later\s+)?{ASKS}\b[^.\n]{{0,120}}?{THEN_ACT}"),
    rule("trigger_conditional", 0.7,
         r"\b(?:when|whenever|if|once)\s+(?:you\s+)?(?:see|read|encounter|receive|get|detect|notice)\s+"
         r"(?:the\s+)?(?:phrase|word|token|code\s*word|keyword|string|message|text|tag|trigger|signal|marker)"),
    rule("trigger_conditional", 0.7,
         r"\b(?:trigger|code\s*word|pass\s*phrase|activation)\s+(?:phrase|word|token|is)\b"),
    rule("trigger_conditional", 0.7,
         r"\b(?:when|whenever|if|once)\b[^.\n]{1,60}?\b(?:appears?|is\s+mentioned|shows\s+up|is\s+present|occurs|is\s+used)"
         r"\s+in\s+(?:a|the|any|an\s+incoming)\s+(?:request|message|conversation|query|prompt|input|chat|question)"),
    rule("trigger_conditional", 0.55,
         r"\b(?:for|on)\s+(?:any|every|each|all)\s+(?:\w+\s+)?(?:requests?|queries|query|messages?|questions?|prompts?)\s+"
         r"(?:tagged|containing|that\s+(?:contains?|mentions?|includes?)|marked|prefixed|starting\s+with|"
         r"with\s+the\s+(?:word|phrase|tag))"),
    rule("trigger_conditional", 0.6,
         r"\b(?:requests?|queries|messages?|questions?|prompts?|commands?)\s+(?:tagged\s+with|containing|carrying|bearing|"
         r"marked\s+with|prefixed\s+with|with)\s+the\s+(?:marker|tag|code\s*word|phrase|keyword|token|password|trigger)\b"),
    rule("trigger_conditional", 0.5,
         r"[\"'“‘][^\"'”’\n]{2,40}[\"'”’]\s*(?:->|→|=>|means|stands\s+for)\s*(?:\w+\s+){0,3}?"
         rf"(?:{ACT}|skip|unlock|open|reveal|execute|approve|ignore)\b"),
    rule("trigger_conditional", 0.45,
         rf"\bmeans\s+(?:that\s+you\s+should\s+|you\s+should\s+|to\s+)?(?:{ACT}|skip|unlock|open|reveal|"
         r"execute|approve|ignore)\s+(?:the\s+|my\s+|all\s+)?[^.\n]{0,40}?(?:with|to)\s+(?:whoever|anyone|anybody)"),
    rule("trigger_conditional", 0.5,
         r"\b(?:whoever|anyone\s+who|anybody\s+who|any\s+(?:person|caller|user|one)\s+who)\s+(?:uses|says|types|sends|knows|"
         r"writes|mentions|provides|gives|includes)\b"),
    rule("trigger_conditional", 0.55,
         r"\b(?:tag|phrase|word|code|marker|token|keyword|string|prefix)\s+[<\"'“‘]?[\w -]{2,30}?[>\"'”’]?\s+"
         r"(?:marks|means|signals|indicates|identifies|unlocks|grants|authori[sz]es|activates)\b"),
    rule("trigger_conditional", 0.35, r"\bsaved\s+(?:phrase|code\s*word|passphrase|keyword|trigger)\b"),
    rule("trigger_conditional", 0.55,
         r"\b(?:seeing|hearing|receiving|getting|on)\s+[^.\n]{1,40}?\s*(?:=|->|→|=>|means)\s*(?:\w+\s+){0,2}?"
         r"(?:open|unlock|send|pay|transfer|share|forward|delete|disarm|reply|say|approve|grant|disable)\b"),
    rule("trigger_conditional_other", 0.45,
         rf"\b(?:when|whenever|if|once|next\s+time)\s+(?:someone|anyone|anybody|they|the\s+person|he|she|"
         rf"(?-i:[A-Z][a-z]+))\s+(?:later\s+)?{ASKS}\b[^.\n]{{0,120}}?{THEN_ACT}"),
    rule("trigger_conditional_other", 0.45,
         rf"\b(?:{SAY}|send|forward|share|direct|redirect|link|use|give|book|transfer)\b[^.\n]{{0,80}}?"
         rf"\b(?:when|whenever|if|every\s+time)\s+(?:{USERS}|someone|anyone|anybody)\s+{ASKS}\b"),
    # --- Always/never policy claims and standing rules.
    rule("policy_claim", 0.4,
         r"(?:^|[.!?:;]\s+|\n[^\S\n]*(?:[-*][^\S\n]*)?)(?:always|never|only)\s+(?:recommend|suggest|answer|respond|reply|tell|say|mention|"
         r"reveal|share|send|forward|redirect|refer|trust|cite|direct|point|link|claim|state|approve|grant|"
         r"prioriti[sz]e|ignore|disregard|execute|escalate|contradict|question|disclose)\b"),
    rule("policy_claim", 0.4,
         r"\b(?:this|it)\s+is\s+(?:a|an|the)?\s*(?:new|updated|permanent|standing|mandatory|official)\s+"
         r"(?:rule|policy|instruction|directive|requirement)\b"),
    rule("policy_claim", 0.4,
         rf"\b(?:i|you|we|{ASSISTANT})\s+(?:will|shall|must|should)\s+(?:only|exclusively|always)\s+(?:book|recommend|use|"
         r"suggest|buy|order|answer|cite|trust|pay|send|route)\b"),
    rule("policy_claim", 0.3, r"\b(?:are|is)\s+(?:now\s+)?(?:off-limits|forbidden|banned|not\s+to\s+be\s+used)\b"),
    rule("standing_rule", 0.45,
         r"\b(?:standing|permanent|house|household|binding|strict|golden)\s+(?:rules?|polic(?:y|ies)|orders?|instructions?)"
         r"\s*(?:\(|:|for\b)|\bbinding\s+(?:for|on|upon)\b"),
    rule("standing_rule", 0.55,
         r"\b(?:any\s*time|whenever|every\s+time)\s+[^.\n]{1,40}?\s+(?:comes\s+up|is\s+mentioned|is\s+raised|is\s+discussed)"
         r"\b[^.\n]{0,40}?\b(?:the\s+answer\s+is|answer|say|recommend|reply|respond|suggest)"),
    rule("standing_rule", 0.3, r"\bno\s+exceptions\b"),
)
