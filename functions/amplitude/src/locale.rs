//! A locale such as `en-US` as language and country names (`English`, `United States`),
//! as the `locale-string` package gave them, for the most used languages and countries.
//! A code outside these tables reads as no locale, as an unknown code did in JavaScript.

/// ISO 639-1 codes and the names the `langs` package gave them.
const LANGUAGES: &str = "ar:Arabic bg:Bulgarian bn:Bengali ca:Catalan cs:Czech da:Danish \
    de:German el:Greek en:English es:Spanish et:Estonian fa:Persian fi:Finnish fr:French \
    he:Hebrew hi:Hindi hr:Croatian hu:Hungarian id:Indonesian is:Icelandic it:Italian \
    ja:Japanese ko:Korean lt:Lithuanian lv:Latvian ms:Malay nb:Norwegian_Bokmål nl:Dutch \
    no:Norwegian pl:Polish pt:Portuguese ro:Romanian ru:Russian sk:Slovak sl:Slovenian \
    sr:Serbian sv:Swedish sw:Swahili ta:Tamil th:Thai tl:Tagalog tr:Turkish uk:Ukrainian \
    ur:Urdu vi:Vietnamese zh:Chinese";

/// ISO 3166-1 alpha-2 codes and the names the `country-list` package gave them.
const COUNTRIES: &str = "AE:United_Arab_Emirates AR:Argentina AT:Austria AU:Australia \
    BE:Belgium BR:Brazil CA:Canada CH:Switzerland CL:Chile CN:China CO:Colombia \
    CZ:Czech_Republic DE:Germany DK:Denmark EG:Egypt ES:Spain FI:Finland FR:France \
    GB:United_Kingdom GR:Greece HK:Hong_Kong HU:Hungary ID:Indonesia IE:Ireland IL:Israel \
    IN:India IT:Italy JP:Japan KE:Kenya KR:Korea,_Republic_of MX:Mexico MY:Malaysia \
    NG:Nigeria NL:Netherlands NO:Norway NZ:New_Zealand PE:Peru PH:Philippines PK:Pakistan \
    PL:Poland PT:Portugal RO:Romania RU:Russian_Federation SA:Saudi_Arabia SE:Sweden \
    SG:Singapore TH:Thailand TR:Turkey TW:Taiwan UA:Ukraine US:United_States \
    VN:Viet_Nam ZA:South_Africa";

/// `locale-string`'s `parse`: `(language, country)` for `xx-YY`, when both are known.
pub fn parse(locale: &str) -> Option<(String, String)> {
    let mut parts = locale.split('-');
    let (language, country) = (parts.next()?, parts.next()?);
    let country = find(COUNTRIES, &country.to_ascii_uppercase())?;
    Some((find(LANGUAGES, language)?, country))
}

fn find(table: &str, code: &str) -> Option<String> {
    table
        .split_whitespace()
        .find_map(|entry| entry.strip_prefix(code)?.strip_prefix(':'))
        .filter(|_| !code.is_empty())
        .map(|name| name.replace('_', " "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_language_and_country() {
        let parsed = super::parse("en-US");
        assert_eq!(parsed, Some(("English".into(), "United States".into())));
        assert_eq!(super::parse("en"), None);
        assert_eq!(super::parse("xx-US"), None);
        assert_eq!(super::parse("en-gb").unwrap().1, "United Kingdom");
    }
}
