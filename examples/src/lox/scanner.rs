//! Lox's scanner: turns source text into tokens on demand, one per call, as
//! the single-pass compiler asks for them. This is clox's `scanner.c`
//! (chapter 16 of *Crafting Interpreters*).
//!
//! Behaviour matches clox byte for byte:
//!
//! - The scanner works on bytes, not characters. Identifiers are ASCII
//!   letters, digits and `_`; every other byte outside a string literal or a
//!   comment (each byte of a multi-byte UTF-8 character, too) is an
//!   "Unexpected character." error token.
//! - Numbers are digits with an optional fractional part: no leading or
//!   trailing dot, no sign, no exponent.
//! - Strings run from `"` to the next `"`, may span lines and have no
//!   escapes; a missing closing quote gives an "Unterminated string." error
//!   token.
//! - `//` starts a comment that runs to the end of the line.
//! - A token's line is the line the scanner is on when the token ends, so a
//!   multi-line string carries the line of its closing quote.
//! - clox reads the source as a NUL-terminated C string, so a NUL byte ends
//!   the source here too.
//!
//! Invariants: `start <= current <= source.len()`; `current` only moves
//! forward; once the end is reached every further call returns an `Eof`
//! token. Lexemes of non-error tokens are slices of the source that begin
//! and end on ASCII bytes, hence on `char` boundaries.

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    // Single-character tokens.
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    Comma,
    Dot,
    Minus,
    Plus,
    Semicolon,
    Slash,
    Star,
    // One- or two-character tokens.
    Bang,
    BangEqual,
    Equal,
    EqualEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    // Literals.
    Identifier,
    String,
    Number,
    // Keywords.
    And,
    Class,
    Else,
    False,
    For,
    Fun,
    If,
    Nil,
    Or,
    Print,
    Return,
    Super,
    This,
    True,
    Var,
    While,
    /// A lexical error; the token's `lexeme` is the error message.
    Error,
    /// The end of the source.
    Eof,
}

/// One token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token<'src> {
    pub kind: TokenKind,
    /// The token's text in the source (a string literal keeps its quotes),
    /// the error message for an `Error` token, and empty for `Eof`.
    pub lexeme: &'src str,
    /// 1-based source line.
    pub line: u32,
}

/// Produces the tokens of one source text, in order.
pub struct Scanner<'src> {
    source: &'src str,
    /// Start of the token being scanned (byte offset).
    start: usize,
    /// Next byte to look at.
    current: usize,
    line: u32,
}

impl<'src> Scanner<'src> {
    /// A scanner positioned at the start of `source`, on line 1.
    pub fn new(source: &'src str) -> Self {
        Scanner {
            source,
            start: 0,
            current: 0,
            line: 1,
        }
    }

    /// Scans and returns the next token. After the end of the source, keeps
    /// returning `Eof`.
    pub fn scan_token(&mut self) -> Token<'src> {
        self.skip_whitespace();
        self.start = self.current;
        if self.is_at_end() {
            return self.make_token(TokenKind::Eof);
        }

        let c = self.advance();
        if is_alpha(c) {
            return self.identifier();
        }
        if c.is_ascii_digit() {
            return self.number();
        }

        let kind = match c {
            b'(' => TokenKind::LeftParen,
            b')' => TokenKind::RightParen,
            b'{' => TokenKind::LeftBrace,
            b'}' => TokenKind::RightBrace,
            b';' => TokenKind::Semicolon,
            b',' => TokenKind::Comma,
            b'.' => TokenKind::Dot,
            b'-' => TokenKind::Minus,
            b'+' => TokenKind::Plus,
            b'/' => TokenKind::Slash,
            b'*' => TokenKind::Star,
            b'!' => self.either(b'=', TokenKind::BangEqual, TokenKind::Bang),
            b'=' => self.either(b'=', TokenKind::EqualEqual, TokenKind::Equal),
            b'<' => self.either(b'=', TokenKind::LessEqual, TokenKind::Less),
            b'>' => self.either(b'=', TokenKind::GreaterEqual, TokenKind::Greater),
            b'"' => return self.string(),
            _ => return self.error_token("Unexpected character."),
        };
        self.make_token(kind)
    }

    /// True at the end of the text or at a NUL byte (clox's terminator).
    fn is_at_end(&self) -> bool {
        self.peek() == 0
    }

    /// The byte at `current`, or 0 at the end.
    fn peek(&self) -> u8 {
        self.source
            .as_bytes()
            .get(self.current)
            .copied()
            .unwrap_or(0)
    }

    /// The byte after `current`, or 0 past the end.
    fn peek_next(&self) -> u8 {
        if self.is_at_end() {
            return 0;
        }
        self.source
            .as_bytes()
            .get(self.current + 1)
            .copied()
            .unwrap_or(0)
    }

    /// Consumes and returns the current byte (callers check `is_at_end`
    /// first; at the end it returns 0 without moving).
    fn advance(&mut self) -> u8 {
        let c = self.peek();
        if !self.is_at_end() {
            self.current += 1;
        }
        c
    }

    /// Consumes the current byte if it is `expected`.
    fn matches(&mut self, expected: u8) -> bool {
        if self.is_at_end() || self.peek() != expected {
            return false;
        }
        self.current += 1;
        true
    }

    /// `two` if the next byte is `second` (consuming it), else `one`.
    fn either(&mut self, second: u8, two: TokenKind, one: TokenKind) -> TokenKind {
        if self.matches(second) { two } else { one }
    }

    fn make_token(&self, kind: TokenKind) -> Token<'src> {
        Token {
            kind,
            lexeme: self.source.get(self.start..self.current).unwrap_or(""),
            line: self.line,
        }
    }

    fn error_token(&self, message: &'static str) -> Token<'src> {
        Token {
            kind: TokenKind::Error,
            lexeme: message,
            line: self.line,
        }
    }

    /// Skips spaces, tabs, carriage returns, newlines (counting them) and
    /// `//` comments.
    fn skip_whitespace(&mut self) {
        loop {
            match self.peek() {
                b' ' | b'\r' | b'\t' => {
                    self.advance();
                }
                b'\n' => {
                    self.line = self.line.saturating_add(1);
                    self.advance();
                }
                b'/' if self.peek_next() == b'/' => {
                    // The newline itself is left for the next iteration to count.
                    while self.peek() != b'\n' && !self.is_at_end() {
                        self.advance();
                    }
                }
                _ => return,
            }
        }
    }

    fn identifier(&mut self) -> Token<'src> {
        while is_alpha(self.peek()) || self.peek().is_ascii_digit() {
            self.advance();
        }
        let text = self.source.get(self.start..self.current).unwrap_or("");
        self.make_token(keyword(text).unwrap_or(TokenKind::Identifier))
    }

    fn number(&mut self) -> Token<'src> {
        while self.peek().is_ascii_digit() {
            self.advance();
        }
        // A fractional part needs at least one digit after the dot.
        if self.peek() == b'.' && self.peek_next().is_ascii_digit() {
            self.advance();
            while self.peek().is_ascii_digit() {
                self.advance();
            }
        }
        self.make_token(TokenKind::Number)
    }

    fn string(&mut self) -> Token<'src> {
        while self.peek() != b'"' && !self.is_at_end() {
            if self.peek() == b'\n' {
                self.line = self.line.saturating_add(1);
            }
            self.advance();
        }
        if self.is_at_end() {
            return self.error_token("Unterminated string.");
        }
        self.advance(); // The closing quote.
        self.make_token(TokenKind::String)
    }
}

/// Whether `c` may start an identifier.
fn is_alpha(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

/// The keyword `text` spells, if any.
fn keyword(text: &str) -> Option<TokenKind> {
    let kind = match text {
        "and" => TokenKind::And,
        "class" => TokenKind::Class,
        "else" => TokenKind::Else,
        "false" => TokenKind::False,
        "for" => TokenKind::For,
        "fun" => TokenKind::Fun,
        "if" => TokenKind::If,
        "nil" => TokenKind::Nil,
        "or" => TokenKind::Or,
        "print" => TokenKind::Print,
        "return" => TokenKind::Return,
        "super" => TokenKind::Super,
        "this" => TokenKind::This,
        "true" => TokenKind::True,
        "var" => TokenKind::Var,
        "while" => TokenKind::While,
        _ => return None,
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All tokens of `source` up to and including `Eof`.
    fn scan(source: &str) -> Vec<Token<'_>> {
        let mut scanner = Scanner::new(source);
        let mut tokens = Vec::new();
        loop {
            let token = scanner.scan_token();
            tokens.push(token);
            if token.kind == TokenKind::Eof {
                return tokens;
            }
        }
    }

    fn kinds(source: &str) -> Vec<TokenKind> {
        scan(source).iter().map(|t| t.kind).collect()
    }

    #[test]
    fn punctuation_and_operators() {
        use TokenKind::*;
        assert_eq!(
            kinds("(){};,.-+/*! != = == < <= > >="),
            vec![
                LeftParen,
                RightParen,
                LeftBrace,
                RightBrace,
                Semicolon,
                Comma,
                Dot,
                Minus,
                Plus,
                Slash,
                Star,
                Bang,
                BangEqual,
                Equal,
                EqualEqual,
                Less,
                LessEqual,
                Greater,
                GreaterEqual,
                Eof
            ]
        );
    }

    #[test]
    fn keywords_and_identifiers() {
        use TokenKind::*;
        assert_eq!(
            kinds("and class else false for fun if nil or print return super this true var while"),
            vec![
                And, Class, Else, False, For, Fun, If, Nil, Or, Print, Return, Super, This, True,
                Var, While, Eof
            ]
        );
        let tokens = scan("andy _x fo classy x1");
        assert!(tokens[..5].iter().all(|t| t.kind == Identifier));
        assert_eq!(tokens[0].lexeme, "andy");
        assert_eq!(tokens[4].lexeme, "x1");
    }

    #[test]
    fn numbers_have_no_leading_or_trailing_dot() {
        let tokens = scan("12 3.5 .5 6.");
        let pairs: Vec<_> = tokens.iter().map(|t| (t.kind, t.lexeme)).collect();
        assert_eq!(
            pairs,
            vec![
                (TokenKind::Number, "12"),
                (TokenKind::Number, "3.5"),
                (TokenKind::Dot, "."),
                (TokenKind::Number, "5"),
                (TokenKind::Number, "6"),
                (TokenKind::Dot, "."),
                (TokenKind::Eof, ""),
            ]
        );
    }

    #[test]
    fn strings_comments_and_lines() {
        let tokens = scan("// comment\n\"a\nb\" x\n// trailing");
        assert_eq!(tokens[0].kind, TokenKind::String);
        assert_eq!(tokens[0].lexeme, "\"a\nb\"");
        assert_eq!(tokens[0].line, 3, "a string's line is where it ends");
        assert_eq!((tokens[1].lexeme, tokens[1].line), ("x", 3));
        assert_eq!((tokens[2].kind, tokens[2].line), (TokenKind::Eof, 4));
    }

    #[test]
    fn error_tokens() {
        let tokens = scan("\"abc\ndef");
        assert_eq!(tokens[0].kind, TokenKind::Error);
        assert_eq!(tokens[0].lexeme, "Unterminated string.");
        assert_eq!(tokens[0].line, 2);

        // One error token per byte of a non-ASCII character.
        let tokens = scan("@é");
        assert_eq!(tokens.len(), 4);
        assert!(
            tokens[..3]
                .iter()
                .all(|t| t.lexeme == "Unexpected character.")
        );
    }

    #[test]
    fn nul_ends_the_source() {
        assert_eq!(kinds("x\0 y"), vec![TokenKind::Identifier, TokenKind::Eof]);
    }
}
