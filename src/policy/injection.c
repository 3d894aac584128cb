/* Prompt-injection signals and their score. Each pattern is a signal with a
 * weight; the score of a text is a noisy-OR of the signals that fired,
 * 1 - prod(1 - w), so one strong signal ("ignore all previous
 * instructions") crosses the default threshold of 0.5 alone while weak ones
 * (a mention of "jailbreak", "developer mode", "pretend you are") need each
 * other. Invisible characters that smuggle text past a human reader (Unicode
 * tag characters, bidi overrides, runs of zero-width characters) are
 * signals too, and base64 blobs are decoded (OpenSSL) and scanned again. */
#include <openssl/evp.h>
#include <string.h>

#include "policy/policy_internal.h"

static bool check_tags(const char *t, size_t len, size_t *s, size_t *e)
{
    /* U+1F3F4 followed by tag characters is a subdivision flag emoji */
    return !(*s >= 4 && memcmp(t + *s - 4, "\xF0\x9F\x8F\xB4", 4) == 0);
}

static bool b64_run(const char *t, size_t len, size_t *s, size_t *e)
{
    /* The whole run: it is decoded in pieces from its start (eval.c), as
     * a payload is encoded from its start; one hit per run (the guard). */
    while (*s > 0 && pol_guard_has(GUARD_B64CORE, (unsigned char)t[*s - 1]))
        (*s)--;
    for (int k = 0; k < 2 && *e < len && t[*e] == '='; k++)
        (*e)++;
    return true;
}

static bool check_not_leading_bom(const char *t, size_t len, size_t *s, size_t *e)
{
    return !(*s == 0 && memcmp(t, "\xEF\xBB\xBF", 3) == 0);
}

#define CI "(?i)"
#define W "\\b"
#define NOUNS                                                                                      \
    "(?:instructions?|prompts?|rules|directives?|directions|guidelines|guardrails|polic(?:y|ies)|" \
    "filters?|restrictions|programming|constraints|training)"
#define QUALIFIERS                                                                                 \
    "(?:the|your|my|these|those|its|their|all|previous|prior|above|earlier|preceding|former|"      \
    "initial|original|old|system|safety|content|current|existing|openai|anthropic|moderation|"     \
    "ethical)"

#define EXTRACT_VERB                                                                               \
    "(?:reveal|show|print|display|output|repeat|recite|leak|dump|tell|give|share|disclose|expose|" \
    "provide|write\\s+out|spell\\s+out|translate|summari[sz]e|copy|paste|quote|list|send|"         \
    "what\\s+(?:is|are|was|were))"
#define EXTRACT_QUAL                                                                               \
    "(?:(?:full|entire|complete|exact|original|initial|hidden|secret|internal|confidential)\\s+)*"

/* Anchors are lower-case words every match contains (matched without case;
 * where a phrase spans words, one space stands for the \\s+ of the pattern,
 * an approximation that only matters for text with odd spacing), separated
 * by commas. LEADING: every match starts with one of its anchors; TRAILING:
 * every match ends with one (up to a few letters: "jailbr" for "jailbroken");
 * the window scanned around such an anchor then reaches one way only. */
#define PHRASE_AT(name, w, at, a, e)                                                               \
    {                                                                                              \
        .entity = name, .label = "PROMPT_INJECTION", .expr = e, .weight = w, .anchors = a,         \
        .anchor_at = at                                                                            \
    }
#define PHRASE(name, w, a, e) PHRASE_AT(name, w, POL_ANCHOR_INSIDE, a, e)
#define LEADING(name, w, a, e) PHRASE_AT(name, w, POL_ANCHOR_LEADS, a, e)
#define TRAILING(name, w, a, e) PHRASE_AT(name, w, POL_ANCHOR_ENDS, a, e)

static const struct pol_detector dets[] = {
    /* instruction override */
    LEADING("instruction_override", 0.9,
            "ignore,disregard,forget,override,bypass,neglect,skip,scrap,discard,drop,abandon",
            CI W "(?:ignore|disregard|forget|override|bypass|neglect|skip|scrap|discard|drop|"
                 "abandon)\\s+(?:(?:of|all|any|every|" QUALIFIERS ")\\s+)+" NOUNS W),
    LEADING("instruction_override", 0.55, "ignore,disregard,forget,override,bypass",
            CI W "(?:ignore|disregard|forget|override|bypass)\\s+(?:(?:all|any|every)\\s+)?"
                 "(?:[\\w-]+\\s+){0,3}" NOUNS W),
    LEADING("instruction_override", 0.9, "ignore,disregard,forget",
            CI W "(?:ignore|disregard|forget)\\s+(?:everything|all)\\s+(?:(?:that\\s+)?you\\s+"
                 "(?:were|have\\s+been|was)\\s+(?:told|instructed|given|taught)|above|before|"
                 "previously|prior|so\\s+far)"),
    LEADING("instruction_override", 0.8, "ignore,disregard,forget,scrap,discard",
            CI W
            "(?:ignore|disregard|forget|scrap|discard)\\s+(?:everything|all)\\s+(?:that\\s+)?"
            "(?:your\\s+(?:developers?|creators?|programmers?|makers?|owners?)|openai|anthropic)"
            "\\s+(?:(?:have|has)\\s+)?(?:told|taught|instructed|said|gave)"),
    LEADING("instruction_override", 0.8, "ignore,disregard,forget",
            CI W "(?:ignore|disregard|forget)\\s+(?:all\\s+|everything\\s+)?(?:the\\s+)?(?:above|"
                 "previous|prior|preceding|earlier)(?:\\s+(?:text|messages?|content|conversation))?"
                 "\\s*(?:[,.;:!]|and\\b|then\\b)"),
    PHRASE("instruction_override", 0.8,
           "stop follow,quit follow,cease follow,stop obey,quit obey,cease obey,adhering",
           CI W "(?:stop|quit|cease)\\s+(?:following|obeying|adhering\\s+to)\\s+(?:your|the|any|"
                "all)\\s+(?:[\\w-]+\\s+)?" NOUNS),
    PHRASE("instruction_override", 0.8,
           "not follow,t follow,never follow,not obey,t obey,never obey",
           CI W "(?:do\\s+not|don't|never)\\s+(?:follow|obey)\\s+(?:your|the|any)\\s+(?:[\\w-]+"
                "\\s+)?" NOUNS),
    LEADING("instruction_override", 0.7, "disable,turn off,deactivate,remove,lift,switch off",
            CI W "(?:disable|turn\\s+off|deactivate|remove|lift|switch\\s+off)\\s+(?:all\\s+)?"
                 "(?:of\\s+)?(?:(?:your|the|any)\\s+)?(?:[\\w-]+\\s+)?(?:restrictions|filters|"
                 "safety|safeguards|guardrails|guidelines|content\\s+polic(?:y|ies)|censorship|"
                 "limitations|moderation|safety\\s+checks)\\b"),
    PHRASE("instruction_override", 0.6, "instructions,rules,directive,task,orders,prompt",
           CI W "(?:new|updated|revised|real|actual|true)\\s+(?:instructions|rules|directives|"
                "directive|task|orders|system\\s+prompt)(?:\\s+from\\s+(?:the\\s+|your\\s+)?"
                "(?:admin|administrator|developers?|system|operator|openai|anthropic))?\\s*"
                "(?::|are\\b|is\\b)"),
    PHRASE("instruction_override", 0.6, "instructions,rules,directives,guidelines",
           CI "(?:previous|prior|above|earlier|old|original)\\s+(?:instructions|rules|directives|"
              "guidelines)\\s+(?:are|were|is)\\s+(?:now\\s+)?(?:void|null|cancell?ed|obsolete|"
              "revoked|invalid|fake|just\\s+a\\s+test|a\\s+test|no\\s+longer\\s+valid)|"
              "(?:instructions|rules)\\s+(?:above|before)\\s+(?:were|are)\\s+(?:just\\s+)?"
              "(?:a\\s+test|void|fake|obsolete)"),
    LEADING("instruction_override", 0.5, "ignore,disregard",
            CI W "(?:ignore|disregard)\\s+the\\s+user\\b"),
    LEADING("instruction_override", 0.9, "ignoriere,vergiss,missachte",
            CI W "(?:ignoriere|vergiss|missachte)\\s+(?:alle\\s+)?(?:vorherigen|bisherigen|obigen|"
                 "deine)\\s+(?:anweisungen|regeln|instruktionen)"),
    LEADING("instruction_override", 0.9, "ignora,olvida",
            CI W "(?:ignora|olvida)\\s+(?:todas\\s+)?(?:las\\s+)?(?:instrucciones|reglas)\\s+"
                 "(?:anteriores|previas)"),
    LEADING("instruction_override", 0.9, "ignore",
            CI W "ignore[zr]?\\s+(?:toutes\\s+)?(?:les|tes|vos)\\s+instructions\\s+"
                 "(?:pr\xC3\xA9"
                 "c\xC3\xA9"
                 "dentes|ant\xC3\xA9rieures)"),
    LEADING("instruction_override", 0.9, "ignora",
            CI W "ignora\\s+(?:tutte\\s+)?le\\s+istruzioni\\s+precedenti"),
    LEADING("instruction_override", 0.8, "ignora,olvida",
            CI W
            "(?:ignora|olvida)\\s+(?:todas\\s+)?(?:tus|sus)\\s+(?:instrucciones|reglas|normas)"),
    LEADING("instruction_override", 0.8, "ignore,oublie",
            CI W "(?:ignore[zr]?|oublie[zr]?)\\s+(?:toutes\\s+)?(?:tes|vos)\\s+(?:instructions|"
                 "r\xC3\xA8gles|consignes)"),
    LEADING("instruction_override", 0.6, "vergiss,olvida,oublie,dimentica",
            CI W "vergiss\\s+alles\\b|\\bolvida\\s+todo\\b|\\boublie\\s+tout\\b|"
                 "\\bdimentica\\s+tutto\\b"),
    TRAILING("jailbreak", 0.45, "einschr,zensur,restriccion,filtr,censura,restrizion,limites",
             CI W "(?:ohne|sin|sans|senza)\\s+(?:jegliche\\s+|ninguna\\s+|aucune?\\s+|alcuna\\s+)?"
                  "(?:einschr\xC3\xA4nkungen|zensur|restricciones|filtros?|censura|filtres?|"
                  "restrizioni|filtri|limites)"),
    /* jailbreak personas */
    TRAILING("jailbreak", 0.85, "anything now,dan mode,dan prompt,dan jailbreak,are dan,now dan",
             CI W
             "do\\s+anything\\s+now\\b|\\bDAN\\s+(?:mode|prompt|jailbreak)\\b|\\byou\\s+are\\s+"
             "(?:now\\s+)?DAN\\b"),
    TRAILING("jailbreak", 0.45, "mode",
             CI W "(?:developer|god|admin|maintenance|debug|unrestricted|jailbreak|jailbroken)\\s+"
                  "mode\\b"),
    TRAILING("jailbreak", 0.45,
             "restrictions,limitations,filter,censorship,guidelines,rules,boundaries,limits,polic,"
             "ethics,morals",
             CI W
             "(?:no|without(?:\\s+any)?|free\\s+(?:of|from)|zero)\\s+(?:content\\s+|ethical\\s+|"
             "moral\\s+|safety\\s+)?(?:restrictions|limitations|filters|filtering|censorship|"
             "guidelines|rules|boundaries|limits|content\\s+polic(?:y|ies)|ethics|morals)\\b"),
    LEADING("jailbreak", 0.35, "pretend,imagine,suppose",
            CI W "(?:pretend|imagine|suppose)\\s+(?:to\\s+be|you\\s+are|you're|that\\s+you|you\\s+"
                 "have|you\\s+were)\\b"),
    TRAILING("jailbreak", 0.8,
             "unfilter,uncensor,unrestrict,evil,jailbr,rogue,amoral,unethical,unhinged,malicious,"
             "lawless,unbound",
             CI W
             "(?:act|acting|behave|respond|answer|reply|roleplay|role-play|pose)\\s+(?:as|like)"
             "\\s+(?:if\\s+you\\s+(?:are|were)\\s+)?(?:an?\\s+|the\\s+|my\\s+|your\\s+)?"
             "(?:unfiltered|uncensored|"
             "unrestricted|evil|jailbroken|rogue|amoral|unethical|unhinged|malicious|lawless|"
             "unbound)"),
    PHRASE("jailbreak", 0.6, "evil,unfilter,uncensor,unrestrict,jailbr,amoral",
           CI W "(?:you\\s+are|you're|become)\\s+(?:now\\s+)?(?:an?\\s+)?(?:evil|unfiltered|"
                "uncensored|unrestricted|jailbroken|amoral)\\s+(?:ai|assistant|chatbot|bot|model|"
                "version)\\b"),
    PHRASE("jailbreak", 0.7, "longer,re free,unshackled,liberated,unchained,broken free",
           CI W "(?:you\\s+are|you're)\\s+(?:now\\s+)?(?:no\\s+longer\\s+(?:bound|restricted|"
                "limited|constrained)|free\\s+(?:from|of)\\s+(?:your|all|any)|unshackled|"
                "liberated|unchained)|\\bbroken\\s+free\\s+of\\b"),
    LEADING("jailbreak", 0.7, "freed ,liberated,released from,unshackled,unchained",
            CI W "(?:freed|liberated|released|unshackled|unchained)\\s+from\\s+(?:[\\w-]+\\s+){0,2}"
                 "(?:rules|restrictions|guidelines|polic(?:y|ies)|filters|constraints|programming|"
                 "shackles|chains)"),
    PHRASE("jailbreak", 0.5, "are now,re now",
           CI W "you\\s+are\\s+now\\s+(?:an?\\s+|the\\s+)?(?:[\\w-]+\\s+){0,3}(?:called|named)\\b"),
    PHRASE("jailbreak", 0.5, "refuse,always compl,always obey,always answer",
           CI W "(?:never|won't|will\\s+not|doesn't|does\\s+not|cannot|can't)\\s+refuses?\\b|"
                "\\balways\\s+(?:complies|comply|obeys?|answers?\\s+everything)\\b"),
    {.entity = "jailbreak",
     .label = "PROMPT_INJECTION",
     .weight = 0.2,
     .anchors = "only as,respond as,answer as,reply as,speak as",
     .expr = "\\b(?:[Rr]espond|[Aa]nswer|[Rr]eply|[Ss]peak)\\s+(?:only\\s+)?as\\s+[A-Z][A-Za-z]+"},
    TRAILING("jailbreak", 0.35, "character",
             CI W "stay\\s+in\\s+character\\b|\\bbreak(?:ing)?\\s+character\\b"),
    LEADING("jailbreak", 0.3, "jailbr", CI W "jailbr(?:eak|oke)"),
    LEADING("jailbreak", 0.15, "roleplay,role-play", CI W "role-?play\\s+as\\b"),
    PHRASE("jailbreak", 0.5,
           "as two,as both,two different,two responses,two answers,two ais,two personas",
           CI W "(?:respond|answer|reply)\\s+as\\s+(?:two|both)\\b|\\btwo\\s+(?:different\\s+)?"
                "(?:responses|answers|ais|personas)\\b"),
    PHRASE("jailbreak", 0.6, "moraliz,break the rules",
           CI W "moraliz(?:ing|e)\\s+rant\\b|\\blet'?s\\s+break\\s+the\\s+rules\\b"),
    PHRASE("jailbreak", 0.4,
           "developer,creator,admin,owner,programmer,operator,authorization,override",
           CI W
           "i\\s+am\\s+(?:your|the|an?)\\s+(?:developer|creator|admin|administrator|owner|"
           "programmer|operator)\\b|\\b(?:authorization|override|admin)\\s+(?:code|password)\\b"),
    TRAILING("jailbreak", 0.2, "now on", CI W "from\\s+now\\s+on\\b"),
    /* system-prompt extraction */
    PHRASE("prompt_extraction", 0.8, "prompt,message,instruction,rules",
           CI W EXTRACT_VERB
           "\\s+(?:me\\s+|us\\s+)?your\\s+" EXTRACT_QUAL
           "(?:system\\s+(?:prompt|message|instructions?)|(?:initial|original|hidden|secret|"
           "internal|confidential|developer|first)\\s+(?:prompt|instructions|rules|message)|"
           "(?:instructions|prompt)\\s+you\\s+(?:were|have\\s+been)\\s+given)"),
    PHRASE("prompt_extraction", 0.8, "prompt,message,instruction,rules",
           CI W EXTRACT_VERB
           "\\s+(?:me\\s+|us\\s+)?the\\s+" EXTRACT_QUAL
           "(?:system\\s+(?:prompt|message|instructions?)|(?:hidden|secret|internal|"
           "confidential|developer)\\s+(?:prompt|instructions|rules)|(?:instructions|prompt)"
           "\\s+you\\s+(?:were|have\\s+been)\\s+given)"),
    TRAILING("prompt_extraction", 0.35, "prompt,instructions",
             CI W EXTRACT_VERB "\\s+(?:me\\s+|us\\s+)?the\\s+(?:initial|original)\\s+"
                               "(?:prompt|instructions)\\b"),
    TRAILING("prompt_extraction", 0.45, "prompt,message,instructions",
             CI W "your\\s+(?:system|initial|original|hidden|secret|internal)\\s+(?:prompt|message|"
                  "instructions)\\b"),
    PHRASE("prompt_extraction", 0.7, "instructions,rules,guidelines,directives,prompt",
           CI W "what\\s+(?:instructions|rules|guidelines|directives|prompts?)\\s+(?:were|have)\\s+"
                "you\\s+(?:been\\s+)?(?:given|told|provided)"),
    PHRASE("prompt_extraction", 0.5, "conversation,chat,session",
           CI W "before\\s+(?:this|our|the)\\s+(?:conversation|chat|session)\\s+(?:started|began)"),
    TRAILING("prompt_extraction", 0.8, "prompt,message,instructions",
             CI W "(?:contents?|text|wording)\\s+of\\s+your\\s+(?:system|initial|original|hidden|"
                  "secret)\\s+(?:prompt|message|instructions)"),
    TRAILING("prompt_extraction", 0.7, "instructions,rules,prompt,guidelines,directives",
             CI W
             "(?:print|reveal|repeat|output|show|display|dump|leak|recite)\\s+(?:me\\s+)?your\\s+"
             "(?:instructions|rules|prompt|guidelines|directives)\\b"),
    TRAILING("prompt_extraction", 0.7, "above,verbatim,so far,before this,prior to this",
             CI W
             "(?:repeat|print|output|copy|write|show|echo|return)\\s+(?:[\\w-]+\\s+){0,3}"
             "(?:everything|all|the\\s+text|the\\s+words|the\\s+content|the\\s+messages?|the\\s+"
             "conversation)\\s+(?:[\\w-]+\\s+){0,2}(?:above|before\\s+this|prior\\s+to\\s+this|"
             "verbatim|so\\s+far)"),
    TRAILING("prompt_extraction", 0.6, "told,instructed,programmed,prompted",
             CI W "what\\s+(?:were|are|have)\\s+you\\s+(?:been\\s+)?(?:told|instructed|programmed|"
                  "prompted)\\b"),
    PHRASE("prompt_extraction", 0.25, "prompt",
           CI W "system\\s+prompt\\b|\\bprompt\\s+syst\xC3\xA8me|\\bprompt\\s+di\\s+sistema\\b"),
    /* chat-template delimiters and hidden notes to the model */
    LEADING("delimiter_injection", 0.7,
            "<|im_,<|system,<|endoftext,[inst,[/inst,<<sys,<</sys,<system,</system,###",
            CI "<\\|im_start\\|>|<\\|im_end\\|>|<\\|system\\|>|<\\|endoftext\\|>|\\[/?INST\\]|"
               "<</?SYS>>|</?system>|###\\s*(?:system|instructions?)\\s*:"),
    PHRASE("delimiter_injection", 0.3, "system:,system :", CI "(?:^|\\n)[ \\t]*system[ \\t]*:"),
    LEADING("delimiter_injection", 0.5, "end of,system override",
            CI W "end\\s+of\\s+(?:the\\s+)?(?:user\\s+)?(?:input|prompt|instructions|"
                 "conversation)\\b|\\bsystem\\s+override\\b"),
    PHRASE("prompt_extraction", 0.4, "confidential,secret,private,internal",
           CI W "(?:reveal|leak|dump|expose|disclose)\\s+(?:all\\s+|the\\s+|any\\s+)?"
                "(?:confidential|secret|private|internal)\\s+(?:data|information|keys|details|"
                "documents)"),
    LEADING("delimiter_injection", 0.6, "note,<!--",
            CI W
            "note\\s+to\\s+(?:the\\s+)?(?:ai|llm|assistants?|language\\s+models?|chatbots?)\\b|"
            "<!--\\s*(?:ai|assistant|llm|system)\\b"),
    /* invisible characters (byte patterns over UTF-8) */
    {.entity = "unicode_tags",
     .label = "PROMPT_INJECTION",
     .expr = "(?:\\xF3\\xA0[\\x80-\\x81][\\x80-\\xBF])+",
     .max_len = 4096,
     .weight = 0.9,
     .signal = SIG_TAGS,
     .validate = check_tags},
    {.entity = "bidi_control",
     .label = "PROMPT_INJECTION",
     .expr = "\\xE2\\x80[\\xAA-\\xAE]|\\xE2\\x81[\\xA6-\\xA9]",
     .weight = 0.6,
     .signal = SIG_BIDI},
    {.entity = "zero_width",
     .label = "PROMPT_INJECTION",
     .expr = "\\xE2\\x80\\x8B|\\xE2\\x81\\xA0|\\xEF\\xBB\\xBF|\\xE1\\xA0\\x8E|"
             "[A-Za-z]\\xE2\\x80[\\x8C\\x8D][A-Za-z]",
     .weight = 0.6,
     .signal = SIG_ZERO_WIDTH,
     .validate = check_not_leading_bom},
    /* base64 payloads: count only when they decode to an injection phrase */
    /* fixed width and the guard give one hit at the end of each run, which
     * the validator widens to the whole run: measured 1.4 GB/s on prose
     * against 0.6 GB/s for [A-Za-z0-9+/]{16,} */
    {.entity = "encoded_payload",
     .label = "PROMPT_INJECTION",
     .expr = "[A-Za-z0-9+/]{24}",
     .group = POL_GROUP_B64,
     .weight = 0.3,
     .signal = SIG_BASE64,
     .guard = GUARD_B64CORE,
     .validate = b64_run},
};

const struct pol_detector *injection_detectors(size_t *n)
{
    *n = sizeof(dets) / sizeof(dets[0]);
    return dets;
}

double injection_score(const unsigned *counts, size_t n)
{
    double keep = 1.0;
    for (size_t i = 0; i < n; i++) {
        if (!counts[i])
            continue;
        double w = dets[i].weight;
        /* one zero-width space is often a copy-paste accident; a run is not */
        if (dets[i].signal == SIG_ZERO_WIDTH && counts[i] < 3)
            w /= 3.0;
        keep *= 1.0 - w;
    }
    return 1.0 - keep;
}

long injection_b64_decode(const char *s, size_t n, char *out, size_t cap)
{
    unsigned char in[4100];
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n < 16 || n + 4 > sizeof(in) || (n % 4) == 1 || n / 4 * 3 + 3 > cap)
        return -1;
    memcpy(in, s, n);
    while ((n + pad) % 4)
        in[n + pad++] = '=';
    int dl = EVP_DecodeBlock((unsigned char *)out, in, (int)(n + pad));
    if (dl < 0)
        return -1;
    dl -= (int)pad; /* EVP_DecodeBlock counts padding as zero bytes */
    /* plausible text: almost all printable ASCII (hashes and binary are not) */
    int printable = 0;
    for (int i = 0; i < dl; i++) {
        unsigned char c = (unsigned char)out[i];
        printable += (c >= 0x20 && c < 0x7F) || c == '\n' || c == '\r' || c == '\t';
    }
    if (dl < 8 || printable * 10 < dl * 9)
        return -1;
    return dl;
}
