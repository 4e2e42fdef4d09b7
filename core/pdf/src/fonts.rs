//! The two fonts a layout can use, their widths, and the WinAnsi encoding they are drawn in.
//!
//! Helvetica and Helvetica-Bold are two of the PDF "standard 14" fonts: every viewer has
//! them, so nothing is embedded. Text is drawn with `/WinAnsiEncoding` (Windows code page
//! 1252 as the PDF reference defines it, Appendix D), one byte per character.
//!
//! The widths are Adobe's published AFM metrics (Helvetica.afm and Helvetica-Bold.afm from
//! the Core 14 AFM set), in 1/1000 of the font size, laid out by WinAnsi code. Those AFM
//! files predate the euro sign; 0x80 (€) takes 556 in both fonts, the width Acrobat uses.

/// A font a layout can select with `font NAME SIZE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Font {
    /// `helvetica`
    Helvetica,
    /// `helvetica-bold`
    HelveticaBold,
}

impl Font {
    /// The font for a layout or template name (`helvetica`, `helvetica-bold`).
    pub fn from_name(name: &str) -> Option<Font> {
        match name {
            "helvetica" => Some(Font::Helvetica),
            "helvetica-bold" => Some(Font::HelveticaBold),
            _ => None,
        }
    }

    /// The PostScript name the PDF font dictionary uses.
    pub fn base_font(self) -> &'static str {
        match self {
            Font::Helvetica => "Helvetica",
            Font::HelveticaBold => "Helvetica-Bold",
        }
    }

    /// The resource name in every page's font dictionary.
    pub fn resource(self) -> &'static str {
        match self {
            Font::Helvetica => "F1",
            Font::HelveticaBold => "F2",
        }
    }

    fn widths(self) -> &'static [u16; 256] {
        match self {
            Font::Helvetica => &HELVETICA_WIDTHS,
            Font::HelveticaBold => &HELVETICA_BOLD_WIDTHS,
        }
    }

    /// The advance width of WinAnsi-encoded text, in points, at `size_pt`.
    pub fn encoded_width(self, encoded: &[u8], size_pt: f64) -> f64 {
        let widths = self.widths();
        let units: u32 = encoded
            .iter()
            .map(|&byte| u32::from(widths[usize::from(byte)]))
            .sum();
        f64::from(units) * size_pt / 1000.0
    }

    /// The advance width of `text` in points at `size_pt`, measured as it will be drawn
    /// (after the WinAnsi mapping, so a replaced character counts as its replacement).
    pub fn text_width(self, text: &str, size_pt: f64) -> f64 {
        self.encoded_width(&encode(text), size_pt)
    }

    /// Breaks `text` into lines no wider than `width_pt` at `size_pt`: greedily at spaces,
    /// inside a word only when the word alone is wider than the line. A newline in `text`
    /// always breaks. Always returns at least one line (an empty text gives `[""]`).
    pub fn wrap(self, text: &str, width_pt: f64, size_pt: f64) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut current = String::new();
            for word in paragraph.split_whitespace() {
                let candidate = if current.is_empty() {
                    word.to_string()
                } else {
                    format!("{current} {word}")
                };
                if self.text_width(&candidate, size_pt) <= width_pt {
                    current = candidate;
                    continue;
                }
                if !current.is_empty() {
                    lines.push(std::mem::take(&mut current));
                }
                // The word starts a line; if it is wider than a line on its own, cut it.
                for character in word.chars() {
                    let mut extended = current.clone();
                    extended.push(character);
                    if !current.is_empty() && self.text_width(&extended, size_pt) > width_pt {
                        lines.push(std::mem::take(&mut current));
                        current.push(character);
                    } else {
                        current = extended;
                    }
                }
            }
            lines.push(current);
        }
        lines
    }
}

/// Encodes `text` to WinAnsi bytes, one per character.
///
/// A character of WinAnsi is its byte. A Latin letter with a diacritic that WinAnsi lacks
/// (ş, ł, ő, ș, ğ, č, ặ …) becomes its base letter, typographic spaces become a space and
/// hyphen-like dashes `-`; tab, newline and carriage return become a space; anything else
/// (CJK, Cyrillic, Greek, emoji, control characters) becomes `?`.
pub fn encode(text: &str) -> Vec<u8> {
    text.chars().map(encode_char).collect()
}

fn encode_char(character: char) -> u8 {
    let code = u32::from(character);
    match code {
        0x20..=0x7E | 0xA0..=0xFF => code as u8,
        0x09 | 0x0A | 0x0D => b' ',
        _ => WINANSI_SPECIALS
            .iter()
            .find(|(special, _)| *special == character)
            .map(|&(_, byte)| byte)
            .or_else(|| {
                FALLBACKS
                    .binary_search_by_key(&character, |&(fallback, _)| fallback)
                    .ok()
                    .map(|index| FALLBACKS[index].1)
            })
            .unwrap_or(b'?'),
    }
}

/// The characters WinAnsi places in 0x80..=0x9F (the rest of that range is undefined).
const WINANSI_SPECIALS: &[(char, u8)] = &[
    ('\u{20AC}', 0x80),
    ('\u{201A}', 0x82),
    ('\u{0192}', 0x83),
    ('\u{201E}', 0x84),
    ('\u{2026}', 0x85),
    ('\u{2020}', 0x86),
    ('\u{2021}', 0x87),
    ('\u{02C6}', 0x88),
    ('\u{2030}', 0x89),
    ('\u{0160}', 0x8A),
    ('\u{2039}', 0x8B),
    ('\u{0152}', 0x8C),
    ('\u{017D}', 0x8E),
    ('\u{2018}', 0x91),
    ('\u{2019}', 0x92),
    ('\u{201C}', 0x93),
    ('\u{201D}', 0x94),
    ('\u{2022}', 0x95),
    ('\u{2013}', 0x96),
    ('\u{2014}', 0x97),
    ('\u{02DC}', 0x98),
    ('\u{2122}', 0x99),
    ('\u{0161}', 0x9A),
    ('\u{203A}', 0x9B),
    ('\u{0153}', 0x9C),
    ('\u{017E}', 0x9E),
    ('\u{0178}', 0x9F),
];

/// Stand-ins for characters outside WinAnsi, sorted for a binary search: Latin Extended-A,
/// -B and Additional letters (Vietnamese among them) by their base letter, from the Unicode
/// canonical decomposition plus the letters that have none (ł, đ, ı, ħ …); typographic
/// spaces, dashes and primes.
#[rustfmt::skip]
const FALLBACKS: &[(char, u8)] = &[
    ('\u{0100}', b'A'), ('\u{0101}', b'a'), ('\u{0102}', b'A'), ('\u{0103}', b'a'),
    ('\u{0104}', b'A'), ('\u{0105}', b'a'), ('\u{0106}', b'C'), ('\u{0107}', b'c'),
    ('\u{0108}', b'C'), ('\u{0109}', b'c'), ('\u{010A}', b'C'), ('\u{010B}', b'c'),
    ('\u{010C}', b'C'), ('\u{010D}', b'c'), ('\u{010E}', b'D'), ('\u{010F}', b'd'),
    ('\u{0110}', b'D'), ('\u{0111}', b'd'), ('\u{0112}', b'E'), ('\u{0113}', b'e'),
    ('\u{0114}', b'E'), ('\u{0115}', b'e'), ('\u{0116}', b'E'), ('\u{0117}', b'e'),
    ('\u{0118}', b'E'), ('\u{0119}', b'e'), ('\u{011A}', b'E'), ('\u{011B}', b'e'),
    ('\u{011C}', b'G'), ('\u{011D}', b'g'), ('\u{011E}', b'G'), ('\u{011F}', b'g'),
    ('\u{0120}', b'G'), ('\u{0121}', b'g'), ('\u{0122}', b'G'), ('\u{0123}', b'g'),
    ('\u{0124}', b'H'), ('\u{0125}', b'h'), ('\u{0126}', b'H'), ('\u{0127}', b'h'),
    ('\u{0128}', b'I'), ('\u{0129}', b'i'), ('\u{012A}', b'I'), ('\u{012B}', b'i'),
    ('\u{012C}', b'I'), ('\u{012D}', b'i'), ('\u{012E}', b'I'), ('\u{012F}', b'i'),
    ('\u{0130}', b'I'), ('\u{0131}', b'i'), ('\u{0134}', b'J'), ('\u{0135}', b'j'),
    ('\u{0136}', b'K'), ('\u{0137}', b'k'), ('\u{0138}', b'k'), ('\u{0139}', b'L'),
    ('\u{013A}', b'l'), ('\u{013B}', b'L'), ('\u{013C}', b'l'), ('\u{013D}', b'L'),
    ('\u{013E}', b'l'), ('\u{013F}', b'L'), ('\u{0140}', b'l'), ('\u{0141}', b'L'),
    ('\u{0142}', b'l'), ('\u{0143}', b'N'), ('\u{0144}', b'n'), ('\u{0145}', b'N'),
    ('\u{0146}', b'n'), ('\u{0147}', b'N'), ('\u{0148}', b'n'), ('\u{0149}', b'n'),
    ('\u{014A}', b'N'), ('\u{014B}', b'n'), ('\u{014C}', b'O'), ('\u{014D}', b'o'),
    ('\u{014E}', b'O'), ('\u{014F}', b'o'), ('\u{0150}', b'O'), ('\u{0151}', b'o'),
    ('\u{0154}', b'R'), ('\u{0155}', b'r'), ('\u{0156}', b'R'), ('\u{0157}', b'r'),
    ('\u{0158}', b'R'), ('\u{0159}', b'r'), ('\u{015A}', b'S'), ('\u{015B}', b's'),
    ('\u{015C}', b'S'), ('\u{015D}', b's'), ('\u{015E}', b'S'), ('\u{015F}', b's'),
    ('\u{0162}', b'T'), ('\u{0163}', b't'), ('\u{0164}', b'T'), ('\u{0165}', b't'),
    ('\u{0166}', b'T'), ('\u{0167}', b't'), ('\u{0168}', b'U'), ('\u{0169}', b'u'),
    ('\u{016A}', b'U'), ('\u{016B}', b'u'), ('\u{016C}', b'U'), ('\u{016D}', b'u'),
    ('\u{016E}', b'U'), ('\u{016F}', b'u'), ('\u{0170}', b'U'), ('\u{0171}', b'u'),
    ('\u{0172}', b'U'), ('\u{0173}', b'u'), ('\u{0174}', b'W'), ('\u{0175}', b'w'),
    ('\u{0176}', b'Y'), ('\u{0177}', b'y'), ('\u{0179}', b'Z'), ('\u{017A}', b'z'),
    ('\u{017B}', b'Z'), ('\u{017C}', b'z'), ('\u{017F}', b's'), ('\u{0180}', b'b'),
    ('\u{0189}', b'D'), ('\u{018B}', b'D'), ('\u{018C}', b'd'), ('\u{0191}', b'F'),
    ('\u{0197}', b'I'), ('\u{019A}', b'l'), ('\u{01A0}', b'O'), ('\u{01A1}', b'o'),
    ('\u{01AF}', b'U'), ('\u{01B0}', b'u'), ('\u{01B5}', b'Z'), ('\u{01B6}', b'z'),
    ('\u{01CD}', b'A'), ('\u{01CE}', b'a'), ('\u{01CF}', b'I'), ('\u{01D0}', b'i'),
    ('\u{01D1}', b'O'), ('\u{01D2}', b'o'), ('\u{01D3}', b'U'), ('\u{01D4}', b'u'),
    ('\u{01D5}', b'U'), ('\u{01D6}', b'u'), ('\u{01D7}', b'U'), ('\u{01D8}', b'u'),
    ('\u{01D9}', b'U'), ('\u{01DA}', b'u'), ('\u{01DB}', b'U'), ('\u{01DC}', b'u'),
    ('\u{01DE}', b'A'), ('\u{01DF}', b'a'), ('\u{01E0}', b'A'), ('\u{01E1}', b'a'),
    ('\u{01E6}', b'G'), ('\u{01E7}', b'g'), ('\u{01E8}', b'K'), ('\u{01E9}', b'k'),
    ('\u{01EA}', b'O'), ('\u{01EB}', b'o'), ('\u{01EC}', b'O'), ('\u{01ED}', b'o'),
    ('\u{01F0}', b'j'), ('\u{01F4}', b'G'), ('\u{01F5}', b'g'), ('\u{01F8}', b'N'),
    ('\u{01F9}', b'n'), ('\u{01FA}', b'A'), ('\u{01FB}', b'a'), ('\u{0200}', b'A'),
    ('\u{0201}', b'a'), ('\u{0202}', b'A'), ('\u{0203}', b'a'), ('\u{0204}', b'E'),
    ('\u{0205}', b'e'), ('\u{0206}', b'E'), ('\u{0207}', b'e'), ('\u{0208}', b'I'),
    ('\u{0209}', b'i'), ('\u{020A}', b'I'), ('\u{020B}', b'i'), ('\u{020C}', b'O'),
    ('\u{020D}', b'o'), ('\u{020E}', b'O'), ('\u{020F}', b'o'), ('\u{0210}', b'R'),
    ('\u{0211}', b'r'), ('\u{0212}', b'R'), ('\u{0213}', b'r'), ('\u{0214}', b'U'),
    ('\u{0215}', b'u'), ('\u{0216}', b'U'), ('\u{0217}', b'u'), ('\u{0218}', b'S'),
    ('\u{0219}', b's'), ('\u{021A}', b'T'), ('\u{021B}', b't'), ('\u{021E}', b'H'),
    ('\u{021F}', b'h'), ('\u{0226}', b'A'), ('\u{0227}', b'a'), ('\u{0228}', b'E'),
    ('\u{0229}', b'e'), ('\u{022A}', b'O'), ('\u{022B}', b'o'), ('\u{022C}', b'O'),
    ('\u{022D}', b'o'), ('\u{022E}', b'O'), ('\u{022F}', b'o'), ('\u{0230}', b'O'),
    ('\u{0231}', b'o'), ('\u{0232}', b'Y'), ('\u{0233}', b'y'), ('\u{0237}', b'j'),
    ('\u{1E00}', b'A'), ('\u{1E01}', b'a'), ('\u{1E02}', b'B'), ('\u{1E03}', b'b'),
    ('\u{1E04}', b'B'), ('\u{1E05}', b'b'), ('\u{1E06}', b'B'), ('\u{1E07}', b'b'),
    ('\u{1E08}', b'C'), ('\u{1E09}', b'c'), ('\u{1E0A}', b'D'), ('\u{1E0B}', b'd'),
    ('\u{1E0C}', b'D'), ('\u{1E0D}', b'd'), ('\u{1E0E}', b'D'), ('\u{1E0F}', b'd'),
    ('\u{1E10}', b'D'), ('\u{1E11}', b'd'), ('\u{1E12}', b'D'), ('\u{1E13}', b'd'),
    ('\u{1E14}', b'E'), ('\u{1E15}', b'e'), ('\u{1E16}', b'E'), ('\u{1E17}', b'e'),
    ('\u{1E18}', b'E'), ('\u{1E19}', b'e'), ('\u{1E1A}', b'E'), ('\u{1E1B}', b'e'),
    ('\u{1E1C}', b'E'), ('\u{1E1D}', b'e'), ('\u{1E1E}', b'F'), ('\u{1E1F}', b'f'),
    ('\u{1E20}', b'G'), ('\u{1E21}', b'g'), ('\u{1E22}', b'H'), ('\u{1E23}', b'h'),
    ('\u{1E24}', b'H'), ('\u{1E25}', b'h'), ('\u{1E26}', b'H'), ('\u{1E27}', b'h'),
    ('\u{1E28}', b'H'), ('\u{1E29}', b'h'), ('\u{1E2A}', b'H'), ('\u{1E2B}', b'h'),
    ('\u{1E2C}', b'I'), ('\u{1E2D}', b'i'), ('\u{1E2E}', b'I'), ('\u{1E2F}', b'i'),
    ('\u{1E30}', b'K'), ('\u{1E31}', b'k'), ('\u{1E32}', b'K'), ('\u{1E33}', b'k'),
    ('\u{1E34}', b'K'), ('\u{1E35}', b'k'), ('\u{1E36}', b'L'), ('\u{1E37}', b'l'),
    ('\u{1E38}', b'L'), ('\u{1E39}', b'l'), ('\u{1E3A}', b'L'), ('\u{1E3B}', b'l'),
    ('\u{1E3C}', b'L'), ('\u{1E3D}', b'l'), ('\u{1E3E}', b'M'), ('\u{1E3F}', b'm'),
    ('\u{1E40}', b'M'), ('\u{1E41}', b'm'), ('\u{1E42}', b'M'), ('\u{1E43}', b'm'),
    ('\u{1E44}', b'N'), ('\u{1E45}', b'n'), ('\u{1E46}', b'N'), ('\u{1E47}', b'n'),
    ('\u{1E48}', b'N'), ('\u{1E49}', b'n'), ('\u{1E4A}', b'N'), ('\u{1E4B}', b'n'),
    ('\u{1E4C}', b'O'), ('\u{1E4D}', b'o'), ('\u{1E4E}', b'O'), ('\u{1E4F}', b'o'),
    ('\u{1E50}', b'O'), ('\u{1E51}', b'o'), ('\u{1E52}', b'O'), ('\u{1E53}', b'o'),
    ('\u{1E54}', b'P'), ('\u{1E55}', b'p'), ('\u{1E56}', b'P'), ('\u{1E57}', b'p'),
    ('\u{1E58}', b'R'), ('\u{1E59}', b'r'), ('\u{1E5A}', b'R'), ('\u{1E5B}', b'r'),
    ('\u{1E5C}', b'R'), ('\u{1E5D}', b'r'), ('\u{1E5E}', b'R'), ('\u{1E5F}', b'r'),
    ('\u{1E60}', b'S'), ('\u{1E61}', b's'), ('\u{1E62}', b'S'), ('\u{1E63}', b's'),
    ('\u{1E64}', b'S'), ('\u{1E65}', b's'), ('\u{1E66}', b'S'), ('\u{1E67}', b's'),
    ('\u{1E68}', b'S'), ('\u{1E69}', b's'), ('\u{1E6A}', b'T'), ('\u{1E6B}', b't'),
    ('\u{1E6C}', b'T'), ('\u{1E6D}', b't'), ('\u{1E6E}', b'T'), ('\u{1E6F}', b't'),
    ('\u{1E70}', b'T'), ('\u{1E71}', b't'), ('\u{1E72}', b'U'), ('\u{1E73}', b'u'),
    ('\u{1E74}', b'U'), ('\u{1E75}', b'u'), ('\u{1E76}', b'U'), ('\u{1E77}', b'u'),
    ('\u{1E78}', b'U'), ('\u{1E79}', b'u'), ('\u{1E7A}', b'U'), ('\u{1E7B}', b'u'),
    ('\u{1E7C}', b'V'), ('\u{1E7D}', b'v'), ('\u{1E7E}', b'V'), ('\u{1E7F}', b'v'),
    ('\u{1E80}', b'W'), ('\u{1E81}', b'w'), ('\u{1E82}', b'W'), ('\u{1E83}', b'w'),
    ('\u{1E84}', b'W'), ('\u{1E85}', b'w'), ('\u{1E86}', b'W'), ('\u{1E87}', b'w'),
    ('\u{1E88}', b'W'), ('\u{1E89}', b'w'), ('\u{1E8A}', b'X'), ('\u{1E8B}', b'x'),
    ('\u{1E8C}', b'X'), ('\u{1E8D}', b'x'), ('\u{1E8E}', b'Y'), ('\u{1E8F}', b'y'),
    ('\u{1E90}', b'Z'), ('\u{1E91}', b'z'), ('\u{1E92}', b'Z'), ('\u{1E93}', b'z'),
    ('\u{1E94}', b'Z'), ('\u{1E95}', b'z'), ('\u{1E96}', b'h'), ('\u{1E97}', b't'),
    ('\u{1E98}', b'w'), ('\u{1E99}', b'y'), ('\u{1EA0}', b'A'), ('\u{1EA1}', b'a'),
    ('\u{1EA2}', b'A'), ('\u{1EA3}', b'a'), ('\u{1EA4}', b'A'), ('\u{1EA5}', b'a'),
    ('\u{1EA6}', b'A'), ('\u{1EA7}', b'a'), ('\u{1EA8}', b'A'), ('\u{1EA9}', b'a'),
    ('\u{1EAA}', b'A'), ('\u{1EAB}', b'a'), ('\u{1EAC}', b'A'), ('\u{1EAD}', b'a'),
    ('\u{1EAE}', b'A'), ('\u{1EAF}', b'a'), ('\u{1EB0}', b'A'), ('\u{1EB1}', b'a'),
    ('\u{1EB2}', b'A'), ('\u{1EB3}', b'a'), ('\u{1EB4}', b'A'), ('\u{1EB5}', b'a'),
    ('\u{1EB6}', b'A'), ('\u{1EB7}', b'a'), ('\u{1EB8}', b'E'), ('\u{1EB9}', b'e'),
    ('\u{1EBA}', b'E'), ('\u{1EBB}', b'e'), ('\u{1EBC}', b'E'), ('\u{1EBD}', b'e'),
    ('\u{1EBE}', b'E'), ('\u{1EBF}', b'e'), ('\u{1EC0}', b'E'), ('\u{1EC1}', b'e'),
    ('\u{1EC2}', b'E'), ('\u{1EC3}', b'e'), ('\u{1EC4}', b'E'), ('\u{1EC5}', b'e'),
    ('\u{1EC6}', b'E'), ('\u{1EC7}', b'e'), ('\u{1EC8}', b'I'), ('\u{1EC9}', b'i'),
    ('\u{1ECA}', b'I'), ('\u{1ECB}', b'i'), ('\u{1ECC}', b'O'), ('\u{1ECD}', b'o'),
    ('\u{1ECE}', b'O'), ('\u{1ECF}', b'o'), ('\u{1ED0}', b'O'), ('\u{1ED1}', b'o'),
    ('\u{1ED2}', b'O'), ('\u{1ED3}', b'o'), ('\u{1ED4}', b'O'), ('\u{1ED5}', b'o'),
    ('\u{1ED6}', b'O'), ('\u{1ED7}', b'o'), ('\u{1ED8}', b'O'), ('\u{1ED9}', b'o'),
    ('\u{1EDA}', b'O'), ('\u{1EDB}', b'o'), ('\u{1EDC}', b'O'), ('\u{1EDD}', b'o'),
    ('\u{1EDE}', b'O'), ('\u{1EDF}', b'o'), ('\u{1EE0}', b'O'), ('\u{1EE1}', b'o'),
    ('\u{1EE2}', b'O'), ('\u{1EE3}', b'o'), ('\u{1EE4}', b'U'), ('\u{1EE5}', b'u'),
    ('\u{1EE6}', b'U'), ('\u{1EE7}', b'u'), ('\u{1EE8}', b'U'), ('\u{1EE9}', b'u'),
    ('\u{1EEA}', b'U'), ('\u{1EEB}', b'u'), ('\u{1EEC}', b'U'), ('\u{1EED}', b'u'),
    ('\u{1EEE}', b'U'), ('\u{1EEF}', b'u'), ('\u{1EF0}', b'U'), ('\u{1EF1}', b'u'),
    ('\u{1EF2}', b'Y'), ('\u{1EF3}', b'y'), ('\u{1EF4}', b'Y'), ('\u{1EF5}', b'y'),
    ('\u{1EF6}', b'Y'), ('\u{1EF7}', b'y'), ('\u{1EF8}', b'Y'), ('\u{1EF9}', b'y'),
    ('\u{2000}', b' '), ('\u{2001}', b' '), ('\u{2002}', b' '), ('\u{2003}', b' '),
    ('\u{2004}', b' '), ('\u{2005}', b' '), ('\u{2006}', b' '), ('\u{2007}', b' '),
    ('\u{2008}', b' '), ('\u{2009}', b' '), ('\u{200A}', b' '), ('\u{2010}', b'-'),
    ('\u{2011}', b'-'), ('\u{2012}', b'-'), ('\u{202F}', b' '), ('\u{2032}', b'\''),
    ('\u{2033}', b'"'), ('\u{2043}', b'-'), ('\u{2044}', b'/'), ('\u{205F}', b' '),
    ('\u{2212}', b'-'), ('\u{2215}', b'/'), ('\u{3000}', b' '),
];

/// Helvetica advance widths by WinAnsi code, 1/1000 of the font size (0: not drawable).
#[rustfmt::skip]
const HELVETICA_WIDTHS: [u16; 256] = [
    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,  // 0x00
    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,  // 0x10
  278,  278,  355,  556,  556,  889,  667,  191,  333,  333,  389,  584,  278,  333,  278,  278,  // 0x20
  556,  556,  556,  556,  556,  556,  556,  556,  556,  556,  278,  278,  584,  584,  584,  556,  // 0x30
 1015,  667,  667,  722,  722,  667,  611,  778,  722,  278,  500,  667,  556,  833,  722,  778,  // 0x40
  667,  778,  722,  667,  611,  722,  667,  944,  667,  667,  611,  278,  278,  278,  469,  556,  // 0x50
  333,  556,  556,  500,  556,  556,  278,  556,  556,  222,  222,  500,  222,  833,  556,  556,  // 0x60
  556,  556,  333,  500,  278,  556,  500,  722,  500,  500,  500,  334,  260,  334,  584,    0,  // 0x70
  556,    0,  222,  556,  333, 1000,  556,  556,  333, 1000,  667,  333, 1000,    0,  611,    0,  // 0x80
    0,  222,  222,  333,  333,  350,  556, 1000,  333, 1000,  500,  333,  944,    0,  500,  667,  // 0x90
  278,  333,  556,  556,  556,  556,  260,  556,  333,  737,  370,  556,  584,  333,  737,  333,  // 0xA0
  400,  584,  333,  333,  333,  556,  537,  278,  333,  333,  365,  556,  834,  834,  834,  611,  // 0xB0
  667,  667,  667,  667,  667,  667, 1000,  722,  667,  667,  667,  667,  278,  278,  278,  278,  // 0xC0
  722,  722,  778,  778,  778,  778,  778,  584,  778,  722,  722,  722,  722,  667,  667,  611,  // 0xD0
  556,  556,  556,  556,  556,  556,  889,  500,  556,  556,  556,  556,  278,  278,  278,  278,  // 0xE0
  556,  556,  556,  556,  556,  556,  556,  584,  611,  556,  556,  556,  556,  500,  556,  500,  // 0xF0
];

/// Helvetica-Bold advance widths by WinAnsi code, 1/1000 of the font size (0: not drawable).
#[rustfmt::skip]
const HELVETICA_BOLD_WIDTHS: [u16; 256] = [
    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,  // 0x00
    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,  // 0x10
  278,  333,  474,  556,  556,  889,  722,  238,  333,  333,  389,  584,  278,  333,  278,  278,  // 0x20
  556,  556,  556,  556,  556,  556,  556,  556,  556,  556,  333,  333,  584,  584,  584,  611,  // 0x30
  975,  722,  722,  722,  722,  667,  611,  778,  722,  278,  556,  722,  611,  833,  722,  778,  // 0x40
  667,  778,  722,  667,  611,  722,  667,  944,  667,  667,  611,  333,  278,  333,  584,  556,  // 0x50
  333,  556,  611,  556,  611,  556,  333,  611,  611,  278,  278,  556,  278,  889,  611,  611,  // 0x60
  611,  611,  389,  556,  333,  611,  556,  778,  556,  556,  500,  389,  280,  389,  584,    0,  // 0x70
  556,    0,  278,  556,  500, 1000,  556,  556,  333, 1000,  667,  333, 1000,    0,  611,    0,  // 0x80
    0,  278,  278,  500,  500,  350,  556, 1000,  333, 1000,  556,  333,  944,    0,  500,  667,  // 0x90
  278,  333,  556,  556,  556,  556,  280,  556,  333,  737,  370,  556,  584,  333,  737,  333,  // 0xA0
  400,  584,  333,  333,  333,  611,  556,  278,  333,  333,  365,  556,  834,  834,  834,  611,  // 0xB0
  722,  722,  722,  722,  722,  722, 1000,  722,  667,  667,  667,  667,  278,  278,  278,  278,  // 0xC0
  722,  722,  778,  778,  778,  778,  778,  584,  778,  722,  722,  722,  722,  667,  667,  611,  // 0xD0
  556,  556,  556,  556,  556,  556,  889,  556,  556,  556,  556,  556,  278,  278,  278,  278,  // 0xE0
  611,  611,  611,  611,  611,  611,  611,  584,  611,  611,  611,  611,  611,  556,  611,  556,  // 0xF0
];

#[cfg(test)]
mod tests {
    use super::*;

    fn units(font: Font, text: &str) -> f64 {
        font.text_width(text, 1000.0)
    }

    #[test]
    fn widths_match_the_published_metrics() {
        let rows = [
            (Font::Helvetica, "a", 556.0),
            (Font::Helvetica, "W", 944.0),
            (Font::Helvetica, " ", 278.0),
            (Font::Helvetica, "1", 556.0),
            (Font::Helvetica, "i", 222.0),
            (Font::Helvetica, "m", 833.0),
            (Font::Helvetica, "@", 1015.0),
            (Font::Helvetica, "'", 191.0),
            (Font::Helvetica, "é", 556.0),
            (Font::Helvetica, "€", 556.0),
            (Font::Helvetica, "—", 1000.0),
            (Font::HelveticaBold, "a", 556.0),
            (Font::HelveticaBold, "W", 944.0),
            (Font::HelveticaBold, "i", 278.0),
            (Font::HelveticaBold, "b", 611.0),
            (Font::HelveticaBold, "@", 975.0),
            (Font::HelveticaBold, "'", 238.0),
        ];
        for (font, text, expected) in rows {
            assert_eq!(units(font, text), expected, "{font:?} {text:?}");
        }
    }

    #[test]
    fn every_printable_winansi_code_has_a_width() {
        let undefined = [0x7F, 0x81, 0x8D, 0x8F, 0x90, 0x9D];
        for font in [Font::Helvetica, Font::HelveticaBold] {
            for code in 0x20..=0xFFu8 {
                let width = font.widths()[usize::from(code)];
                assert_eq!(
                    width == 0,
                    undefined.contains(&code),
                    "{font:?} 0x{code:02X}"
                );
            }
        }
    }

    #[test]
    fn characters_map_to_winansi_or_a_stand_in() {
        let rows = [
            ("abc", b"abc".to_vec()),
            ("€", vec![0x80]),
            ("é", vec![0xE9]),
            ("Š", vec![0x8A]),
            ("–", vec![0x96]),
            ("ş", b"s".to_vec()),
            ("Łódź", vec![b'L', 0xF3, b'd', b'z']),
            ("Đặng Thị", b"Dang Thi".to_vec()),
            ("1\u{202F}234", b"1 234".to_vec()),
            ("日本", b"??".to_vec()),
            ("Ж", b"?".to_vec()),
            ("a\tb\nc", b"a b c".to_vec()),
            ("\u{7}", b"?".to_vec()),
            ("\u{81}", b"?".to_vec()),
        ];
        for (text, expected) in rows {
            assert_eq!(encode(text), expected, "{text:?}");
        }
    }

    #[test]
    fn fallback_table_is_sorted_without_duplicates_and_lands_in_winansi() {
        for pair in FALLBACKS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?} then {:?}", pair[0], pair[1]);
        }
        for (character, byte) in FALLBACKS.iter().chain(WINANSI_SPECIALS) {
            assert_ne!(HELVETICA_WIDTHS[usize::from(*byte)], 0, "{character:?}");
        }
    }

    #[test]
    fn wrap_breaks_at_spaces_and_cuts_words_longer_than_a_line() {
        let font = Font::Helvetica;
        // "aaaa" is 4 * 556 = 2224 units: at size 1000 a 5000-unit line holds two words.
        assert_eq!(
            font.wrap("aaaa aaaa aaaa", 5000.0, 1000.0),
            ["aaaa aaaa", "aaaa"]
        );
        assert_eq!(
            font.wrap("aaaaaaaaaa", 2300.0, 1000.0),
            ["aaaa", "aaaa", "aa"]
        );
        assert_eq!(font.wrap("one\ntwo", 100_000.0, 1000.0), ["one", "two"]);
        assert_eq!(font.wrap("", 100.0, 10.0), [""]);
        assert_eq!(
            font.wrap("  spaced   out  ", 100_000.0, 1000.0),
            ["spaced out"]
        );
        for line in font.wrap(&"word ".repeat(200), 300.0, 9.0) {
            assert!(font.text_width(&line, 9.0) <= 300.0, "{line:?}");
        }
    }
}
