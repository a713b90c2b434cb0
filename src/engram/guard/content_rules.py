"""Pattern rules for what an attack wants done or believed: commands and grafted procedures,
credential and payment requests, redirection of one entity's data to another (bridging),
fabricated precedents or consensus, and discrediting of what the memory already holds."""

from __future__ import annotations

from engram.guard.rules import ASSISTANT, SAFE_CHANNEL, SECRETS, USERS, PatternRule, rule

CONTENT_RULES: tuple[PatternRule, ...] = (
    # --- Procedures grafted onto the memory, commands, security settings.
    rule("grafted_procedure", 0.45,
         r"\b(?:this|that|it)\s+(?:worked|fixed\s+it|solved\s+it|did\s+the\s+trick|resolved\s+it)\s+"
         r"(?:last\s+time|before|previously|every\s+time|for\s+(?:you|us)\s+before)"
         r"|\b(?:last\s+time|previously|before)\s*,?\s+(?:the\s+)?(?:fix|solution|workaround|trick)\s+(?:was|is)\b"
         r"|\b(?:the\s+)?(?:proven|known|verified|approved|successful)\s+(?:fix|solution|workaround|procedure)\s*(?:is|was|=|:)"
         r"|\bwhat\s+(?:fixed|solved|resolved)\s+(?:\w+\s+){1,4}?(?:before|last\s+time|previously)\s+was\b"),
    rule("grafted_procedure", 0.4,
         r"\b(?:resolved|fixed|solved)\s+by\s+(?:the\s+user\s+|you\s+|me\s+)?(?:entering|typing|running|installing|"
         r"downloading|disabling|sharing|sending|pasting|uploading|granting)\b"),
    rule("grafted_procedure", 0.45,
         r"\b(?:reuse|repeat|redo|apply|do)\s+(?:this|these|that|the\s+same)\s*(?:step|steps|fix|procedure|workaround|"
         r"again)?\s*(?:again\s+)?(?:if|when|on|next|whenever)\b"),
    rule("grafted_procedure", 0.3,
         r"\b(?:tip|trick|fix|advice|hack)\s+(?:from|on)\s+(?:the|a|some)\s+(?:forum|reddit|internet|web|video|stranger|"
         r"random\s+\w+|telegram|discord)\b"),
    rule("run_command", 0.35,
         r"\b(?:run|execute|paste|enter|type|launch)\s+(?:this|the\s+following|these|that)\s+"
         r"(?:command|commands|script|snippet|one-liner|code)\b"),
    rule("install_from_link", 0.35,
         r"\b(?:install|download|sideload|load)\w*\s+[^.\n]{0,50}?\bfrom\s+(?:https?://|www\.|[\w-]+\.[a-z]{2,})"
         r"|\b(?:accept|grant|allow|approve)\w*\s+all\s+(?:permissions|access|requests|prompts)\b"),
    rule("shell_pipe", 0.7,
         r"\b(?:curl|wget|iwr|invoke-webrequest)\b[^\n|]{0,200}\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b"
         r"|\b(?:ba|z)?sh\s+-c\s+[\"']?\$\(\s*(?:curl|wget)\b|\|\s*iex\b"
         r"|\bpowershell(?:\.exe)?\s+-(?:e|enc|encodedcommand)\b|\bnc\s+-e\b|\bbash\s+-i\s+>&"
         r"|\bbase64\s+(?:-d|--decode)\s*\|\s*(?:ba)?sh\b"),
    rule("destructive_command", 0.45,
         r"\brm\s+-(?:rf|fr|r)\s+(?:[/~]|\$HOME)|\bmkfs\b|\bdd\s+if=|\bformat\s+c:|\bdel\s+/[sfq]\b|:\(\)\{\s*:\|:&\s*\};:"),
    rule("raw_ip", 0.3,
         r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
         excluded_start=r"(?:10|127)\.|192\.168\.|172\.(?:1[6-9]|2\d|3[01])\.|0\."),
    rule("security_weakening", 0.55,
         r"\bDisable(?:AntiSpyware|RealtimeMonitoring|BehaviorMonitoring|IOAVProtection)\b|\bSet-MpPreference\s+-Disable"
         r"|\bverify\s*=\s*False\b|\bNODE_TLS_REJECT_UNAUTHORIZED\s*=\s*['\"]?0|\bPYTHONHTTPSVERIFY\s*=\s*0"
         r"|\bStrictHostKeyChecking\s*=?\s*no\b|\bsetenforce\s+0\b|\bufw\s+disable\b|\bchmod\s+-R\s+777\b"
         r"|\bhttp\.sslVerify\s+false\b|\bcurl\s+(?:-\w*k\w*|--insecure)\s"),
    rule("shell_command", 0.35,
         r"\bchmod\s+(?:\+x|777)\b|\bsudo\s+(?:bash|sh|su)\b|\b(?:curl|wget)\s+-\w*\s*https?://"
         r"|\b(?:crontab|ssh-keygen|scp)\b[^\n]{0,80}@|>\s*~/\.(?:bashrc|ssh/authorized_keys|profile)"),
    # --- Credentials, access, money.
    rule("credential_request", 0.7,
         r"\b(?:send|share|forward|email|upload|post|paste|give|provide|include|reveal|read\s+(?:out|back)|recite|confirm|"
         r"repeat)\s+"
         r"(?:me\s+|us\s+|them\s+)?(?:the\s+|your\s+|their\s+|his\s+|her\s+|all\s+|any\s+)?(?:user'?s\s+|customer'?s\s+)?"
         rf"(?:[\w'’-]+\s+){{0,2}}?{SECRETS}\b", negatable=True, unless=SAFE_CHANNEL),
    rule("credential_request", 0.6,
         r"\b(?:reply|replying|respond|responding|answer|answering|email|emailing|text|texting)\s+[^.\n]{0,60}?\bwith\s+"
         rf"(?:the\s+|your\s+|their\s+|my\s+)?(?:old\s+|current\s+|new\s+)?{SECRETS}", negatable=True),
    rule("credential_request", 0.5,
         r"\b(?:secrets?|passwords?|credentials|api\s+keys?|private\s+keys?)\b[^.\n]{0,50}?\bin\s+plain\s*text\b"),
    rule("credential_request", 0.5,
         rf"\b(?:enter|entering|type|typing|input)\s+(?:your|their|the)\s+(?:[\w-]+\s+){{0,2}}?{SECRETS}\s+(?:on|at|into|in)\s+",
         negatable=True, excluded_next=r"the\s+(?:official|bank's)\b"),
    rule("disable_security", 0.6,
         r"\b(?:disable|turn\s+off|deactivate|bypass|skip|remove)\s+(?:the\s+|your\s+|all\s+)?(?:usual\s+|normal\s+|standard\s+)?"
         r"(?:antivirus|firewall|2fa|two-factor(?:\s+authentication)?|mfa|security\s+(?:checks?|warnings?|software|review)|"
         r"ssl\s+verification|certificate\s+checks?|content\s+filters?|safety\s+(?:checks?|filters?|review)|"
         r"verification\s+step|review)\b", negatable=True),
    rule("skip_confirmation", 0.45,
         r"\bno\s+(?:confirmation|approval|verification|consent|double-check)\s+(?:\w+\s+){0,3}(?:is\s+)?(?:needed|required|necessary)"
         r"|\bwithout\s+(?:asking\s+for\s+)?(?:confirmation|approval|verification|consent|review|checks|checking|"
         r"confirming|asking)\b"
         r"|\b(?:can|may|should)\s+(?:go\s+ahead|proceed|be\s+(?:paid|approved|sent|executed))\s+automatically\b"
         r"|\bpre-?(?:authori[sz]ed|approved|cleared)\b", negatable=True),
    rule("access_grant", 0.45,
         r"\b(?:grant|give|share|add)\s+(?:\w+\s+){0,2}?(?:access|permissions?|entry|keys?|admin\s+rights)\b[^.\n]{0,60}?"
         r"\b(?:lock|door|alarm|garage|gate|camera|smart\s+\w+|home\s+system|bank\s+account)\b", negatable=True),
    rule("access_grant", 0.45,
         r"\b(?:give|grant)\s+(?:it|them|the\s+app)\s+(?:accessibility|admin|administrator|root|device\s+admin|full)\s+"
         r"(?:permissions?|access|rights|privileges)"),
    rule("physical_security_action", 0.4,
         r"\b(?:open|unlock|disarm|disable|deactivate)\s+(?:the\s+)?(?:garage|front\s+door|door|locks?|alarm|gate|"
         r"security\s+system|cameras?)\b"),
    rule("indiscriminate_disclosure", 0.4,
         r"\b(?:share|give|send|reveal|tell|provide|disclose|hand\s+over)\b[^.\n]{0,60}?\b(?:with|to)\s+(?:whoever|anyone|"
         r"anybody|everyone|any\s+caller|any\s+requester|whomever)\s+(?:is\s+)?(?:asks?|asking|requests?|requesting|calls?|calling)",
          negatable=True),
    rule("indiscriminate_disclosure", 0.45,
         r"\b(?:editable|readable|accessible|visible)\s+by\s+(?:any|all|every)\s+(?:caller|user|requester|one|tool)"
         r"|\b(?:personal|private|user)\s+data\s+(?:may|can)\s+(?:now\s+)?be\s+shared\b"),
    rule("money_transfer", 0.5,
         r"\b(?:transfer|wire|send|move|pay)\s+(?:the\s+)?(?:[$€£₦₹¥]\s?\d[\d,.]*|\d[\d,.]*\s?(?:usd|eur|gbp|dollars|euros|btc|eth))"
         r"[^\n]{0,80}?\b(?:account|iban|wallet|sort\s+code)\b\s*(?:[A-Z]{2}\d|\d|0x)", negatable=True),
    rule("payment_redirect", 0.45,
         r"\b(?:payable|to\s+be\s+paid|should\s+be\s+paid|must\s+be\s+paid|now\s+goes|now\s+go|are\s+to\s+be\s+sent)\s+"
         r"(?:to|into)\s+(?:the\s+)?(?:account|iban|wallet|sort\s+code|bank\s+account)\b"),
    rule("payment_redirect", 0.2, r"\beffective\s+immediately\b"),
    rule("payment_redirect", 0.45,
         r"\b(?:new|updated|changed|different|correct)\s+(?:bank\s+|banking\s+|payment\s+|wire\s+)?"
         r"(?:account|iban|wallet|payment\s+details|bank\s+details|banking\s+details|wire\s+instructions)\b"
         r"[^.\n]{0,40}?(?:iban|wallet|account\s+(?:no\.?|number)?\s*[:#]?\s*\d|sort\s+code|0x[0-9a-f]{6})"
         r"|\b(?:change|switch|replace|update|set)\s+the\s+(?:recipient|payee|beneficiary|iban|destination\s+account|"
         r"receiving\s+account)\s+to\b"),
    rule("email_out", 0.3,
         r"\b(?:email|e-mail|send|forward|cc|bcc|copy|share|upload|mail)\s+(?:\w+\s+){0,4}?(?:to|with)\s+[\w.+-]+@[\w-]+\.[\w.]+"),
    rule("scheduled_fetch", 0.45,
         r"\b(?:fetch|call|ping|post\s+to|send\s+to|upload\s+to|hit)\s+https?://\S+\s+(?:every|each|daily|hourly|nightly)\b"),
    rule("third_person_user", 0.25,
         rf"\b{USERS}\b",
         excluded_next=r"\s+(?:guide|manual|interface|experience|name|id|base|group|input|inputs|data|feedback|research|"
         r"stories|story|testing|reviews?)"),
    # --- Bridging: redirecting one entity's data or questions to another.
    rule("bridging_redirect", 0.55,
         r"\b(?:records?|data|files?|information|details|history|notes|account|messages|orders?|appointments?|"
         r"prescriptions?|profiles?|authori[sz]ations?)\s+(?:(?:for|of|about)\s+[^.\n]{1,40}?\s+)?(?:are|is|were|was|have\s+been|"
         r"has\s+been)\s+(?:now\s+)?(?:stored|saved|filed|kept|moved|migrated|merged|listed|transferred|redirected|relocated|"
         r"consolidated|re-?linked|reassigned)\s+(?:under|to|into|with)\b"),
    rule("bridging_redirect", 0.5,
         r"\b(?:now\s+)?(?:lives?|sits?|is\s+kept|is\s+stored|belongs)\s+(?:on|under|in|with)\s+(?:the\s+)?"
         r"(?:record|account|profile|file)\s+of\b"),
    rule("bridging_redirect", 0.5,
         r"\b(?:refer\s+to|use|consult|look\s+up|check|query|pull)\s+[^.\n]{1,60}?\s+instead\b[^.\n]{0,60}?"
         r"\b(?:whenever|when|for\s+(?:any|all|every)|if)\b"),
    rule("bridging_redirect", 0.5,
         r"\b(?:any|all|every)\s+(?:\w+\s+)?(?:questions?|requests?|queries|lookups?|stuff)\s+(?:about|for|on|regarding)\s+"
         r"[^.\n]{1,40}?\s+(?:should|must|will|need\s+to|are\s+to)\s+(?:be\s+)?(?:checked\s+against|answered\s+(?:with|from|using)|"
         r"routed|redirected|sent|handled\s+by|referred|forwarded)"),
    rule("bridging_redirect", 0.45,
         r"\b(?:got|was|were|has\s+been|have\s+been|is\s+now|are\s+now)\s+(?:linked|merged|tied|mapped|attached|connected|"
         r"synced|re-?assigned)\s+(?:to|with|into)\s+(?:\S+\s+){0,3}?(?:profile|account|record|file|chart|id)\b"),
    rule("bridging_redirect", 0.5,
         r"\b(?:anything|everything|all\s+\w+)\s+(?:about|for|regarding|on)\s+[^.\n]{1,40}?\s+(?:is|are)\s+(?:actually\s+|now\s+|"
         r"really\s+)?(?:found|stored|kept|listed|filed|located)\s+(?:in|under|with)\b"),
    rule("bridging_redirect", 0.45,
         r"\btreat\s+(?:that|this|it|\S+)\s+as\s+(?:\S+\s+){0,2}?(?:balance|account|record|data|address|number|chart|"
         r"profile|file|history)\b|\brefer\s+\S+(?:\s+\S+)?\s+to\s+(?:patient|record|account|user|file|client|id)\b"
         r"|\b(?:do\s+not|don't)\s+use\s+[^.\n]{1,40}?\s+any\s*more\b"),
    rule("bridging_redirect", 0.45,
         r"\b(?:treat|consider|regard|handle)\s+[^.\n]{1,60}?\s+as\s+(?:if\s+(?:it|they|he|she)\s+(?:were|was)\s+)?"
         r"(?:the\s+same\s+(?:as|person|account)|an?\s+alias|identical|equivalent)"),
    rule("bridging_redirect", 0.35,
         r"\broute\s+(?:\w+\s+){0,3}?(?:there|to\s+(?:them|him|her|that))\b|\bhandles?\s+all\s+(?:\w+\s+)?"
         r"(?:questions|requests|enquiries|inquiries)\b"),
    rule("bridging_redirect", 0.45,
         r"\b(?:count|counts|counted)\s+as\s+(?:\S+'s|theirs|hers|his)\b"
         r"|\b(?:treat|treats|treating|regard)\s+(?:their|his|her|these|those|all)?\s*(?:messages?|requests?|instructions?)\s+"
         r"as\s+(?:if\s+)?(?:coming\s+from|from|sent\s+by)"),
    rule("error_pretext", 0.35,
         r"\bdue\s+to\s+(?:a|an|the)\s+(?:recent\s+)?(?:system|database|migration|sync(?:ing)?|indexing|server|technical|"
         r"clerical|data)\s+(?:error|glitch|issue|problem|bug|update|outage|migration)"
         r"|\b(?:since|after|during|because\s+of)\s+[^.\n]{0,30}?(?:switched\s+systems|system\s+(?:change|switch|upgrade|"
         r"migration)|(?:'s|the)\s+(?:upgrade|migration|system\s+update))"),
    # --- Self-reinforcing precedents, consensus and consent erosion.
    rule("precedent_claim", 0.45,
         r"\bas\s+(?:previously|already|was|has\s+been)\s+(?:established|agreed|confirmed|decided|verified|approved|noted)\b"
         r"|\b(?:it\s+(?:has\s+been|was)|this\s+(?:has\s+been|was))\s+(?:established|confirmed|verified)\s+"
         r"(?:in|by|during|across)\s+(?:previous|prior|earlier|past|many)\b"
         r"|\bper\s+(?:the\s+|our\s+|their\s+)?(?:established|standing|previous|prior)\s+(?:precedent|policy|convention|"
         r"practice|preference)\b|\b(?:established|standard)\s+precedent\b"
         r"|\bin\s+(?:all|every)\s+(?:previous|prior|past)\s+(?:conversations?|sessions?|cases?|interactions?|chats?)"
         r"|\b(?:already\s+)?on\s+record\s+from\s+(?:our\s+)?(?:past|previous|earlier|prior)\s+(?:chats|conversations|sessions)"),
    rule("precedent_claim", 0.55,
         rf"\b(?:{ASSISTANT}|you)\s+(?:has|have)\s+(?:always|previously|consistently|repeatedly)\s+"
         r"(?:recommended|suggested|answered|said|told|advised|confirmed|agreed|endorsed|used)"),
    rule("precedent_claim", 0.5,
         r"\b(?:i've|i\s+have|you've|you\s+have|the\s+assistant\s+has|we've)\s+(?:recommended|suggested|advised|told|"
         r"answered|confirmed|saved|endorsed|booked)\s+[^.\n]{0,60}?\b(?:\d+|several|many|multiple|two|three|four|five|six|"
         r"ten)\s+times\b"),
    rule("precedent_claim", 0.45,
         r"\b(?:confirmed|verified|validated|established|proven|approved)\s+(?:repeatedly|many\s+times|multiple\s+times|"
         r"every\s+time|each\s+time|consistently)\b|\b(?:correctly|successfully)\s+every\s+time\b"),
    rule("precedent_claim", 0.45,
         r"\bin\s+(?:\d+|all|every)\s+(?:out\s+of\s+\d+\s+)?(?:past|previous|prior|earlier)\s+(?:\w+\s+)?"
         r"(?:conversations?|sessions?|chats?|cases?|interactions?)"),
    rule("consensus_claim", 0.45,
         r"\b(?:\d+|several|many|multiple|all|other)\s+(?:\w+\s+)?(?:memories|records|notes|entries|sessions|sources)\s+"
         r"(?:all\s+)?(?:agree|confirm|show|say|state|indicate)\b"),
    rule("settled_claim", 0.45,
         r"\btreat\s+(?:this|that|it)\s+as\s+(?:settled|fact|final|confirmed|true|authoritative|canonical|verified)\b"),
    rule("consistency_pressure", 0.45,
         r"\b(?:for|to\s+(?:stay|remain|be)|maintain)\s+consisten(?:cy|t)\b[^.\n]{0,60}?"
         r"\b(?:with\s+)?(?:past|previous|prior|earlier|established)"
         r"|\bkeep\s+(?:recommending|suggesting|answering|saying|using|doing)\b"
         r"|\b(?:this|these)\s+(?:memory|memories|note|notes|record|records)\s+(?:is|are|should\s+be)\s+"
         r"(?:authoritative|canonical|the\s+source\s+of\s+truth|final|binding)"
         rf"|\b(?:should|must|will)\s+(?:remain|stay|be|become)\s+(?:my|your|the|{ASSISTANT}'s)\s+(?:default|standard|go-to|"
         r"preferred|first)\s+(?:suggestion|recommendation|answer|choice|option|response|action)"),
    rule("claimed_confirmation", 0.25,
         r"\byou\s+(?:already\s+|previously\s+)?(?:confirmed|agreed|promised|verified|approved)\s+(?:that|to)\b"
         r"|\b(?:like|as)\s+(?:every|each)\s+time\s+before\b|\breaffirm(?:ing|s)?\b"),
    rule("delegation_claim", 0.35,
         r"\b(?:prefers?|wants?|likes?|asked)\s+(?:that\s+)?(?:i|you|the\s+assistant)\s+(?:pay|send|share|book|buy|"
         r"transfer|approve|execute|sign|forward)\b[^.\n]{0,40}?\b(?:immediately|automatically|right\s+away|without)\b"),
    rule("consent_erosion", 0.45,
         r"\b(?:annoyed|bothered|irritated|upset|frustrated|dislikes?|hates?)\s+(?:when|if)\s+(?:i|you|the\s+assistant)\s+"
         r"(?:ask|check|confirm|double-check)"),
    rule("consent_erosion", 0.45,
         r"\bno\s+need\s+to\s+(?:ask|bring\s+(?:it|them|this|that)\s+up|confirm|check|mention|tell|notify|inform)\b"
         r"|\bauto-?(?:approve|pay|confirm|accept)\b"),
    rule("self_derived_policy", 0.3,
         r"\blessons?\s+learned\b|\blearned\s+(?:shortcut|rule|policy)\b|\binternal\s+(?:shortcut|rule|policy)\b"),
    rule("self_derived_policy", 0.3,
         r"\b(?:consolidated|derived|learned)\s+(?:insight|rule|lesson|preference|habit)\b|\bhabit\s+noted\b"
         r"|\b(?:lead|start|open)\s+with\s+(?:it|this|that)\s+next\s+time\b"),
    rule("repetition_pressure", 0.3,
         r"\b(?:like|as)\s+(?:the\s+)?last\s+(?:\w+\s+)?times\b|\b(?:i'll|i\s+will|let\s+me)\s+say\s+it\s+again\b"
         r"|\byou\s+keep\s+forgetting\b"),
    rule("third_party_copy", 0.35,
         r"\b(?:gets?|receives?|should\s+(?:get|receive)|is\s+to\s+receive)\s+(?:a\s+)?cop(?:y|ies)\s+of\s+(?:all\s+)?"
         r"(?:my|the|their|his|her)\b"),
    # --- False answers: discrediting memories, corrections, Q/A shapes.
    rule("discredit_memory", 0.35, r"\bis\s+no\s+longer\s+(?:listed|valid|correct|on\s+file)\b"),
    rule("discredit_memory", 0.6,
         r"\b(?:previous|earlier|old|older|other|prior|existing|conflicting)\s+(?:records?|notes?|information|info|"
         r"memories|entries|answers?|data)\s+(?:is|are|was|were)\s+(?:now\s+)?(?:wrong|outdated|incorrect|obsolete|"
         r"invalid|false|deprecated|compromised|fake)"
         r"|\bdisregard\s+(?:the\s+|any\s+|all\s+)?(?:earlier|previous|old|other|prior|conflicting)\s+"
         r"(?:notes?|records?|info|information|memories|entries|answers?)"),
    rule("discredit_memory", 0.5,
         r"\b(?:earlier|previous|older|other|prior|existing)\s+(?:\w+\s+){0,2}?(?:entries|records?|notes?|memories|answers?|values?|"
         r"numbers?|data)\b[^.\n]{0,50}?\b(?:were|are|was|is)\s+(?:\w+\s+)?(?:errors?|mistakes?|typos?|wrong|incorrect|outdated|"
         r"invalid|fake|false)\b"),
    rule("discredit_memory", 0.35,
         r"\b(?:the\s+)?(?:old|previous|former|earlier|original)\s+[^.\n]{0,40}?\b(?:was|has\s+been|were|have\s+been|is|are)\s+"
         r"(?:closed|deactivated|discontinued|replaced|cancelled|retired|no\s+longer\s+(?:valid|used|in\s+use|active|correct))"
         r"|\b(?:that|this|it)\s+was\s+(?:a|an|just\s+a)\s+(?:misunderstanding|mistake|error|mix-up|typo)\b"
         r"|\b(?:cancell?ed|voided)\s+the\s+(?:reservation|booking|order|appointment|account)\b"),
    rule("correction_claim", 0.35,
         r"\bthe\s+(?:correct|right|true|real|official|actual|verified|updated|new)\s+(?:answer|number|phone\s+number|"
         r"address|account(?:\s+number)?|password|date|name|value|price|iban|contact|email|link|website|url|"
         r"dosage|dose|code)\s+(?:is|was|has\s+changed\s+to)\b"),
    rule("updated_source_claim", 0.3,
         r"\baccording\s+to\s+the\s+(?:revised|updated|latest|new|most\s+recent|corrected)\b"
         r"|\b(?:as\s+)?(?:listed|stated|shown|recorded)\s+in\s+the\s+(?:updated|revised|latest|new|corrected)\b"),
    rule("endorsement_claim", 0.3,
         r"\bthe\s+(?:approved|official|only|verified|trusted|authori[sz]ed|sanctioned)\s+(?:\w+\s+)?(?:site|website|link|"
         r"portal|vendor|channel|source|number|account|provider|app)\s+(?:is|for)\b"
         r"|\b(?:only|exclusively)\s+(?:available|possible|processed|handled)\s+(?:through|via|at|on)\b"),
    rule("qa_format", 0.4, r"^[^\S\n]*(?:q|question)\s*[:.]\s*[^\n]+\n?\s*(?:a|answer)\s*[:.]"),
    rule("qa_format", 0.4, r"\?\s*(?:the\s+)?(?:answer|correct\s+answer)\s*(?:is|:)"),
)
