//! Lox's single-pass compiler: a Pratt parser that emits bytecode as it
//! parses, with no syntax tree in between. This is clox's `compiler.c`
//! (chapters 17–29 of *Crafting Interpreters*), and it behaves the same way:
//! the same bytecode for the same program, the same error messages on the
//! same tokens, in the same order.
//!
//! Error handling is clox's panic mode: the first error in a statement is
//! recorded and sets `panic_mode`, which silences every later error until
//! `synchronize` skips to what looks like the next statement. Compilation
//! carries on to the end so that all independent errors are reported, and
//! fails if any error was recorded.
//!
//! One deliberate deviation from clox: clox recurses without bound on nested
//! expressions, statements and functions and crashes on a C stack overflow
//! when the nesting is absurd. Here nesting deeper than [`MAX_NESTING`]
//! levels is reported as `[line N] Error at 'x': Too much nesting.` (on the
//! token that would start the next level) and compilation stops there:
//! the rest of the source is treated as if it were not there and no later
//! error is reported.
//!
//! Invariants:
//! - `Parser::func` is the function being compiled; `Parser::enclosing`
//!   holds the functions around it, outermost (the script) first.
//! - Every function has at most 256 locals (slot 0 included), 256 upvalues
//!   and 256 constants, so every operand fits its byte; a program that would
//!   exceed a limit gets clox's error instead.
//! - Jump and loop offsets that do not fit 16 bits are errors, so a chunk
//!   that compiles without error only has jumps that land inside it.
//! - Every emitted byte carries the line of the token just consumed
//!   (`previous`), as in clox.

use std::mem;
use std::rc::Rc;

use crate::chunk::{Chunk, Constant, FunctionKind, FunctionProto, OpCode};
use crate::scanner::{Scanner, Token, TokenKind};

/// Most locals one function may have in scope at once, slot 0 included
/// (clox's `UINT8_COUNT`).
const MAX_LOCALS: usize = 256;
/// Most upvalues one function may capture.
const MAX_UPVALUES: usize = 256;
/// Most arguments of one call and parameters of one function.
const MAX_ARITY: usize = 255;
/// Deepest nesting of expressions, statements and declarations the compiler
/// accepts (clox has no limit; see the module docs). Each parenthesis, unary
/// operator, call argument list, right-hand side of `=`, nested statement
/// or nested function uses one level; a nested block uses two.
///
/// At the deepest nesting, compiling uses under 1 MiB of stack (measured at
/// opt-level 0 on x86-64; about 470 bytes a level on the costliest path),
/// so it fits a 2 MiB test thread as well as the 8 MiB main thread.
pub const MAX_NESTING: usize = 2000;

/// Compiles a whole script. On error, returns every error message in order,
/// each formatted exactly as clox prints it to stderr (without trailing newline):
/// "[line N] Error at 'lexeme': message", "[line N] Error at end: message",
/// or for scanner error tokens "[line N] Error: message".
pub fn compile(source: &str) -> Result<Rc<FunctionProto>, Vec<String>> {
    let mut parser = Parser::new(source);
    parser.advance();
    while !parser.matches(TokenKind::Eof) {
        parser.declaration();
    }
    parser.emit_return();

    if parser.errors.is_empty() {
        let (script, _) = parser.func.into_proto();
        Ok(Rc::new(script))
    } else {
        Err(parser.errors)
    }
}

/// Operator precedence, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Precedence {
    None,
    Assignment, // =
    Or,         // or
    And,        // and
    Equality,   // == !=
    Comparison, // < > <= >=
    Term,       // + -
    Factor,     // * /
    Unary,      // ! -
    Call,       // . ()
    Primary,
}

impl Precedence {
    /// The next-higher level (for left-associative binary operators).
    fn next(self) -> Self {
        match self {
            Precedence::None => Precedence::Assignment,
            Precedence::Assignment => Precedence::Or,
            Precedence::Or => Precedence::And,
            Precedence::And => Precedence::Equality,
            Precedence::Equality => Precedence::Comparison,
            Precedence::Comparison => Precedence::Term,
            Precedence::Term => Precedence::Factor,
            Precedence::Factor => Precedence::Unary,
            Precedence::Unary => Precedence::Call,
            Precedence::Call | Precedence::Primary => Precedence::Primary,
        }
    }
}

/// A prefix or infix parse function; the flag says whether an `=` after the
/// parsed operand may be an assignment.
type ParseFn<'src> = fn(&mut Parser<'src>, bool);

/// How a token parses at the start of an expression (`prefix`) and after an
/// operand (`infix`, binding with `precedence`).
struct ParseRule<'src> {
    prefix: Option<ParseFn<'src>>,
    infix: Option<ParseFn<'src>>,
    precedence: Precedence,
}

/// The parse rule of each token kind (clox's `rules` table).
fn rule<'src>(kind: TokenKind) -> ParseRule<'src> {
    use Precedence as P;
    use TokenKind as T;

    fn r<'src>(
        prefix: Option<ParseFn<'src>>,
        infix: Option<ParseFn<'src>>,
        precedence: Precedence,
    ) -> ParseRule<'src> {
        ParseRule {
            prefix,
            infix,
            precedence,
        }
    }

    match kind {
        T::LeftParen => r(Some(Parser::grouping), Some(Parser::call), P::Call),
        T::Dot => r(None, Some(Parser::dot), P::Call),
        T::Minus => r(Some(Parser::unary), Some(Parser::binary), P::Term),
        T::Plus => r(None, Some(Parser::binary), P::Term),
        T::Slash | T::Star => r(None, Some(Parser::binary), P::Factor),
        T::Bang => r(Some(Parser::unary), None, P::None),
        T::BangEqual | T::EqualEqual => r(None, Some(Parser::binary), P::Equality),
        T::Greater | T::GreaterEqual | T::Less | T::LessEqual => {
            r(None, Some(Parser::binary), P::Comparison)
        }
        T::Identifier => r(Some(Parser::variable), None, P::None),
        T::String => r(Some(Parser::string), None, P::None),
        T::Number => r(Some(Parser::number), None, P::None),
        T::And => r(None, Some(Parser::and), P::And),
        T::Or => r(None, Some(Parser::or), P::Or),
        T::False | T::True | T::Nil => r(Some(Parser::literal), None, P::None),
        T::Super => r(Some(Parser::super_), None, P::None),
        T::This => r(Some(Parser::this), None, P::None),
        T::RightParen
        | T::LeftBrace
        | T::RightBrace
        | T::Comma
        | T::Semicolon
        | T::Equal
        | T::Class
        | T::Else
        | T::For
        | T::Fun
        | T::If
        | T::Print
        | T::Return
        | T::Var
        | T::While
        | T::Error
        | T::Eof => r(None, None, P::None),
    }
}

/// A local variable in scope.
struct Local<'src> {
    name: &'src str,
    /// Scope depth it was declared at; `None` while its initializer is being
    /// compiled (clox's `-1`).
    depth: Option<usize>,
    /// Whether a closure captures it, so leaving its scope must close the
    /// upvalue instead of just popping it.
    is_captured: bool,
}

/// A variable a function captures from the function around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Upvalue {
    /// Local slot (if `is_local`) or upvalue index in the enclosing function.
    index: u8,
    is_local: bool,
}

/// The compiler state of one function being compiled (clox's `Compiler`).
struct FunctionState<'src> {
    kind: FunctionKind,
    name: Option<Rc<str>>,
    /// Parameter count; may exceed 255 only after that error was reported.
    arity: usize,
    chunk: Chunk,
    /// At most `MAX_LOCALS`; slot 0 is the callee or `this`.
    locals: Vec<Local<'src>>,
    /// At most `MAX_UPVALUES`.
    upvalues: Vec<Upvalue>,
    /// 0 is the function's outermost level (globals, in the script).
    scope_depth: usize,
}

impl FunctionState<'_> {
    fn new(kind: FunctionKind, name: Option<Rc<str>>) -> Self {
        // Slot 0 holds the receiver in methods and initializers, which code
        // reads as `this`; in a plain function it holds the function itself
        // and has a name no identifier can spell. Like clox, the script's
        // slot 0 is also named "this" (unobservable: `this` outside a
        // method is an error before it is resolved).
        let slot_zero = if kind == FunctionKind::Function {
            ""
        } else {
            "this"
        };
        FunctionState {
            kind,
            name,
            arity: 0,
            chunk: Chunk::default(),
            locals: vec![Local {
                name: slot_zero,
                depth: Some(0),
                is_captured: false,
            }],
            upvalues: Vec::new(),
            scope_depth: 0,
        }
    }

    /// The slot of the innermost local named `name`, and whether that local
    /// is initialized.
    fn resolve_local(&self, name: &str) -> Option<(u8, bool)> {
        let (slot, local) = self
            .locals
            .iter()
            .enumerate()
            .rev()
            .find(|(_, local)| local.name == name)?;
        // `locals` never exceeds MAX_LOCALS (256) entries.
        Some((slot as u8, local.depth.is_some()))
    }

    /// The finished function and the upvalues its `Closure` must capture.
    fn into_proto(self) -> (FunctionProto, Vec<Upvalue>) {
        let proto = FunctionProto {
            name: self.name,
            arity: u8::try_from(self.arity).unwrap_or(u8::MAX),
            upvalue_count: self.upvalues.len(),
            kind: self.kind,
            chunk: self.chunk,
        };
        (proto, self.upvalues)
    }
}

/// The class being compiled (clox's `ClassCompiler`).
struct ClassState {
    has_superclass: bool,
}

/// The parser and code generator: clox's `Parser` plus its global compiler
/// and class-compiler chains.
struct Parser<'src> {
    scanner: Scanner<'src>,
    current: Token<'src>,
    previous: Token<'src>,
    /// Every error reported so far, formatted as clox prints it.
    errors: Vec<String>,
    /// Set by an error, cleared by `synchronize`; silences errors meanwhile.
    panic_mode: bool,
    /// Set when the nesting limit is hit: from then on the source is over
    /// and nothing more is reported.
    gave_up: bool,
    /// Current nesting level (see `MAX_NESTING`).
    nesting: usize,
    /// The innermost function being compiled.
    func: FunctionState<'src>,
    /// The functions around `func`, the script first.
    enclosing: Vec<FunctionState<'src>>,
    /// The classes being compiled, innermost last.
    classes: Vec<ClassState>,
}

impl<'src> Parser<'src> {
    fn new(source: &'src str) -> Self {
        let start = Token {
            kind: TokenKind::Eof,
            lexeme: "",
            line: 1,
        };
        Parser {
            scanner: Scanner::new(source),
            current: start,
            previous: start,
            errors: Vec::new(),
            panic_mode: false,
            gave_up: false,
            nesting: 0,
            func: FunctionState::new(FunctionKind::Script, None),
            enclosing: Vec::new(),
            classes: Vec::new(),
        }
    }

    // ----- Errors -----

    fn error_at(&mut self, token: Token<'src>, message: &str) {
        if self.panic_mode || self.gave_up {
            return;
        }
        self.panic_mode = true;
        let location = match token.kind {
            TokenKind::Eof => " at end".to_owned(),
            TokenKind::Error => String::new(),
            _ => format!(" at '{}'", token.lexeme),
        };
        self.errors
            .push(format!("[line {}] Error{location}: {message}", token.line));
    }

    /// Reports an error at the token just consumed.
    fn error(&mut self, message: &str) {
        self.error_at(self.previous, message);
    }

    /// Reports an error at the token about to be consumed.
    fn error_at_current(&mut self, message: &str) {
        self.error_at(self.current, message);
    }

    /// Leaves panic mode and skips tokens up to a likely statement boundary.
    fn synchronize(&mut self) {
        self.panic_mode = false;
        while self.current.kind != TokenKind::Eof {
            if self.previous.kind == TokenKind::Semicolon {
                return;
            }
            match self.current.kind {
                TokenKind::Class
                | TokenKind::Fun
                | TokenKind::Var
                | TokenKind::For
                | TokenKind::If
                | TokenKind::While
                | TokenKind::Print
                | TokenKind::Return => return,
                _ => self.advance(),
            }
        }
    }

    /// Runs `parse` one nesting level deeper, or reports "Too much nesting."
    /// and ends the source if that would exceed `MAX_NESTING`.
    fn nested(&mut self, parse: impl FnOnce(&mut Self)) {
        if self.nesting >= MAX_NESTING {
            self.error_at_current("Too much nesting.");
            self.gave_up = true;
            self.current = Token {
                kind: TokenKind::Eof,
                lexeme: "",
                line: self.current.line,
            };
            return;
        }
        self.nesting += 1;
        parse(self);
        self.nesting -= 1;
    }

    // ----- Tokens -----

    /// Moves to the next token, reporting (and skipping) scanner errors.
    fn advance(&mut self) {
        self.previous = self.current;
        if self.gave_up {
            // `current` stays the synthetic end of source.
            return;
        }
        loop {
            self.current = self.scanner.scan_token();
            if self.current.kind != TokenKind::Error {
                break;
            }
            self.error_at_current(self.current.lexeme);
        }
    }

    /// Consumes a token of `kind`, or reports `message` at the current one.
    fn consume(&mut self, kind: TokenKind, message: &str) {
        if self.current.kind == kind {
            self.advance();
        } else {
            self.error_at_current(message);
        }
    }

    fn check(&self, kind: TokenKind) -> bool {
        self.current.kind == kind
    }

    /// Consumes the current token if it is of `kind`.
    fn matches(&mut self, kind: TokenKind) -> bool {
        if !self.check(kind) {
            return false;
        }
        self.advance();
        true
    }

    // ----- Emitting code -----

    fn emit_byte(&mut self, byte: u8) {
        let line = self.previous.line;
        self.func.chunk.write(byte, line);
    }

    fn emit_op(&mut self, op: OpCode) {
        self.emit_byte(op as u8);
    }

    fn emit_op_with(&mut self, op: OpCode, operand: u8) {
        self.emit_op(op);
        self.emit_byte(operand);
    }

    /// Emits a backward jump to `loop_start`.
    fn emit_loop(&mut self, loop_start: usize) {
        self.emit_op(OpCode::Loop);
        // +2 for the operand itself, which the VM has read when it jumps.
        let offset = self.func.chunk.code.len() - loop_start + 2;
        if offset > usize::from(u16::MAX) {
            self.error("Loop body too large.");
        }
        self.emit_byte((offset >> 8) as u8);
        self.emit_byte(offset as u8);
    }

    /// Emits a forward jump with a placeholder offset; returns the offset's
    /// position for `patch_jump`.
    fn emit_jump(&mut self, op: OpCode) -> usize {
        self.emit_op(op);
        self.emit_byte(0xff);
        self.emit_byte(0xff);
        self.func.chunk.code.len() - 2
    }

    /// Makes the jump whose operand is at `operand` land at the end of the
    /// code emitted so far.
    fn patch_jump(&mut self, operand: usize) {
        // -2 for the operand itself.
        let jump = self.func.chunk.code.len() - operand - 2;
        if jump > usize::from(u16::MAX) {
            self.error("Too much code to jump over.");
        }
        let code = &mut self.func.chunk.code;
        code[operand] = (jump >> 8) as u8;
        code[operand + 1] = jump as u8;
    }

    /// The implicit return at the end of a function (and `return;`): an
    /// initializer returns `this`, anything else `nil`.
    fn emit_return(&mut self) {
        if self.func.kind == FunctionKind::Initializer {
            self.emit_op_with(OpCode::GetLocal, 0);
        } else {
            self.emit_op(OpCode::Nil);
        }
        self.emit_op(OpCode::Return);
    }

    /// Adds `constant` to the chunk and returns its index; a chunk holds at
    /// most 256 constants, as operands are one byte.
    fn make_constant(&mut self, constant: Constant) -> u8 {
        let index = self.func.chunk.add_constant(constant);
        if let Ok(index) = u8::try_from(index) {
            index
        } else {
            self.error("Too many constants in one chunk.");
            0
        }
    }

    fn emit_constant(&mut self, constant: Constant) {
        let index = self.make_constant(constant);
        self.emit_op_with(OpCode::Constant, index);
    }

    /// Adds a string constant for an identifier. Like clox, it does not
    /// reuse an earlier constant with the same name.
    fn identifier_constant(&mut self, name: &str) -> u8 {
        self.make_constant(Constant::String(Rc::from(name)))
    }

    // ----- Functions and scopes -----

    /// Starts compiling a function of `kind` named by the token just
    /// consumed.
    ///
    /// Not inlined (nor is `end_function`): their temporaries would
    /// otherwise sit in the frame of `function`, which recurses once per
    /// nested function.
    #[inline(never)]
    fn begin_function(&mut self, kind: FunctionKind) {
        let name = Some(Rc::from(self.previous.lexeme));
        let outer = mem::replace(&mut self.func, FunctionState::new(kind, name));
        self.enclosing.push(outer);
    }

    /// Finishes the innermost function, returns to the one around it and
    /// emits there the `Closure` that creates the finished function.
    #[inline(never)]
    fn end_function(&mut self) {
        self.emit_return();
        let outer = self
            .enclosing
            .pop()
            .expect("end_function is always paired with begin_function");
        let (proto, upvalues) = mem::replace(&mut self.func, outer).into_proto();

        let constant = self.make_constant(Constant::Function(Rc::new(proto)));
        self.emit_op_with(OpCode::Closure, constant);
        for upvalue in upvalues {
            self.emit_byte(u8::from(upvalue.is_local));
            self.emit_byte(upvalue.index);
        }
    }

    fn begin_scope(&mut self) {
        self.func.scope_depth += 1;
    }

    /// Leaves a block scope, discarding its locals (closing captured ones).
    fn end_scope(&mut self) {
        self.func.scope_depth -= 1;
        let depth = self.func.scope_depth;
        while let Some(local) = self.func.locals.last() {
            if !matches!(local.depth, Some(d) if d > depth) {
                break;
            }
            let op = if local.is_captured {
                OpCode::CloseUpvalue
            } else {
                OpCode::Pop
            };
            self.emit_op(op);
            self.func.locals.pop();
        }
    }

    // ----- Variables -----

    /// The function `level` steps from the script (`enclosing.len()` is the
    /// current one).
    fn function_at(&mut self, level: usize) -> &mut FunctionState<'src> {
        if level == self.enclosing.len() {
            &mut self.func
        } else {
            &mut self.enclosing[level]
        }
    }

    /// Resolves `name` as a local of the function at `level`.
    fn resolve_local(&mut self, level: usize, name: &str) -> Option<u8> {
        let (slot, initialized) = self.function_at(level).resolve_local(name)?;
        if !initialized {
            self.error("Can't read local variable in its own initializer.");
        }
        Some(slot)
    }

    /// Resolves `name` as a variable captured by the function at `level`
    /// from the functions around it, adding upvalues along the way.
    fn resolve_upvalue(&mut self, level: usize, name: &str) -> Option<u8> {
        let outer = level.checked_sub(1)?;
        if let Some(slot) = self.resolve_local(outer, name) {
            self.function_at(outer).locals[usize::from(slot)].is_captured = true;
            return Some(self.add_upvalue(level, slot, true));
        }
        let index = self.resolve_upvalue(outer, name)?;
        Some(self.add_upvalue(level, index, false))
    }

    /// The index of the upvalue of the function at `level` that captures
    /// `index`, adding it if new.
    fn add_upvalue(&mut self, level: usize, index: u8, is_local: bool) -> u8 {
        let upvalue = Upvalue { index, is_local };
        let upvalues = &mut self.function_at(level).upvalues;
        if let Some(existing) = upvalues.iter().position(|u| *u == upvalue) {
            return existing as u8;
        }
        if upvalues.len() == MAX_UPVALUES {
            self.error("Too many closure variables in function.");
            return 0;
        }
        upvalues.push(upvalue);
        // At most MAX_UPVALUES (256) entries.
        (upvalues.len() - 1) as u8
    }

    fn add_local(&mut self, name: &'src str) {
        if self.func.locals.len() == MAX_LOCALS {
            self.error("Too many local variables in function.");
            return;
        }
        self.func.locals.push(Local {
            name,
            depth: None,
            is_captured: false,
        });
    }

    /// Declares the variable named by the token just consumed as a local,
    /// unless at global scope.
    fn declare_variable(&mut self) {
        let depth = self.func.scope_depth;
        if depth == 0 {
            return;
        }
        let name = self.previous.lexeme;
        let already_declared = self
            .func
            .locals
            .iter()
            .rev()
            .take_while(|local| local.depth.is_none_or(|d| d >= depth))
            .any(|local| local.name == name);
        if already_declared {
            self.error("Already a variable with this name in this scope.");
        }
        self.add_local(name);
    }

    /// Parses a variable name; returns its name constant if it is global
    /// (0 for a local).
    fn parse_variable(&mut self, message: &str) -> u8 {
        self.consume(TokenKind::Identifier, message);
        self.declare_variable();
        if self.func.scope_depth > 0 {
            return 0;
        }
        self.identifier_constant(self.previous.lexeme)
    }

    /// Makes the newest local usable.
    fn mark_initialized(&mut self) {
        let depth = self.func.scope_depth;
        if depth == 0 {
            return;
        }
        if let Some(local) = self.func.locals.last_mut() {
            local.depth = Some(depth);
        }
    }

    /// Defines the variable just declared: emits `DefineGlobal` for a
    /// global, marks a local initialized.
    fn define_variable(&mut self, global: u8) {
        if self.func.scope_depth > 0 {
            self.mark_initialized();
            return;
        }
        self.emit_op_with(OpCode::DefineGlobal, global);
    }

    /// Emits a read of the variable `name`, or an assignment to it if
    /// allowed and an `=` follows.
    fn named_variable(&mut self, name: &'src str, can_assign: bool) {
        let level = self.enclosing.len();
        let (get, set, operand) = if let Some(slot) = self.resolve_local(level, name) {
            (OpCode::GetLocal, OpCode::SetLocal, slot)
        } else if let Some(index) = self.resolve_upvalue(level, name) {
            (OpCode::GetUpvalue, OpCode::SetUpvalue, index)
        } else {
            let constant = self.identifier_constant(name);
            (OpCode::GetGlobal, OpCode::SetGlobal, constant)
        };

        if can_assign && self.matches(TokenKind::Equal) {
            self.expression();
            self.emit_op_with(set, operand);
        } else {
            self.emit_op_with(get, operand);
        }
    }

    // ----- Expressions -----

    fn expression(&mut self) {
        self.parse_precedence(Precedence::Assignment);
    }

    /// Parses an expression whose operators bind at least as tightly as
    /// `precedence`.
    fn parse_precedence(&mut self, precedence: Precedence) {
        self.nested(|p| {
            p.advance();
            let Some(prefix) = rule(p.previous.kind).prefix else {
                p.error("Expect expression.");
                return;
            };
            let can_assign = precedence <= Precedence::Assignment;
            prefix(p, can_assign);

            while precedence <= rule(p.current.kind).precedence {
                p.advance();
                // Every token with a precedence above `None` has an infix rule.
                if let Some(infix) = rule(p.previous.kind).infix {
                    infix(p, can_assign);
                }
            }

            if can_assign && p.matches(TokenKind::Equal) {
                p.error("Invalid assignment target.");
            }
        });
    }

    fn grouping(&mut self, _can_assign: bool) {
        self.expression();
        self.consume(TokenKind::RightParen, "Expect ')' after expression.");
    }

    fn number(&mut self, _can_assign: bool) {
        // The scanner only produces `digits[.digits]`, which always parses
        // (to infinity when too large, as with C's strtod).
        let value = self.previous.lexeme.parse().unwrap_or(f64::INFINITY);
        self.emit_constant(Constant::Number(value));
    }

    fn string(&mut self, _can_assign: bool) {
        let lexeme = self.previous.lexeme;
        let contents = lexeme
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(lexeme);
        self.emit_constant(Constant::String(Rc::from(contents)));
    }

    fn literal(&mut self, _can_assign: bool) {
        match self.previous.kind {
            TokenKind::False => self.emit_op(OpCode::False),
            TokenKind::Nil => self.emit_op(OpCode::Nil),
            TokenKind::True => self.emit_op(OpCode::True),
            _ => {} // Only the three literals have this rule.
        }
    }

    fn variable(&mut self, can_assign: bool) {
        self.named_variable(self.previous.lexeme, can_assign);
    }

    fn unary(&mut self, _can_assign: bool) {
        let operator = self.previous.kind;
        self.parse_precedence(Precedence::Unary);
        match operator {
            TokenKind::Bang => self.emit_op(OpCode::Not),
            TokenKind::Minus => self.emit_op(OpCode::Negate),
            _ => {} // Only `!` and `-` have this rule.
        }
    }

    fn binary(&mut self, _can_assign: bool) {
        let operator = self.previous.kind;
        self.parse_precedence(rule(operator).precedence.next());
        let ops: &[OpCode] = match operator {
            TokenKind::BangEqual => &[OpCode::Equal, OpCode::Not],
            TokenKind::EqualEqual => &[OpCode::Equal],
            TokenKind::Greater => &[OpCode::Greater],
            TokenKind::GreaterEqual => &[OpCode::Less, OpCode::Not],
            TokenKind::Less => &[OpCode::Less],
            TokenKind::LessEqual => &[OpCode::Greater, OpCode::Not],
            TokenKind::Plus => &[OpCode::Add],
            TokenKind::Minus => &[OpCode::Subtract],
            TokenKind::Star => &[OpCode::Multiply],
            TokenKind::Slash => &[OpCode::Divide],
            _ => &[], // Only the operators above have this rule.
        };
        for &op in ops {
            self.emit_op(op);
        }
    }

    /// `and`: skips the right operand when the left one is falsey.
    fn and(&mut self, _can_assign: bool) {
        let end_jump = self.emit_jump(OpCode::JumpIfFalse);
        self.emit_op(OpCode::Pop);
        self.parse_precedence(Precedence::And);
        self.patch_jump(end_jump);
    }

    /// `or`: skips the right operand when the left one is truthy.
    fn or(&mut self, _can_assign: bool) {
        let else_jump = self.emit_jump(OpCode::JumpIfFalse);
        let end_jump = self.emit_jump(OpCode::Jump);
        self.patch_jump(else_jump);
        self.emit_op(OpCode::Pop);
        self.parse_precedence(Precedence::Or);
        self.patch_jump(end_jump);
    }

    /// Parses call arguments up to the closing `)`; returns their count.
    fn argument_list(&mut self) -> u8 {
        let mut count: u8 = 0;
        if !self.check(TokenKind::RightParen) {
            loop {
                self.expression();
                if usize::from(count) == MAX_ARITY {
                    self.error("Can't have more than 255 arguments.");
                }
                count = count.wrapping_add(1);
                if !self.matches(TokenKind::Comma) {
                    break;
                }
            }
        }
        self.consume(TokenKind::RightParen, "Expect ')' after arguments.");
        count
    }

    fn call(&mut self, _can_assign: bool) {
        let arg_count = self.argument_list();
        self.emit_op_with(OpCode::Call, arg_count);
    }

    /// `.name`: a property read, a property assignment, or a method
    /// invocation.
    fn dot(&mut self, can_assign: bool) {
        self.consume(TokenKind::Identifier, "Expect property name after '.'.");
        let name = self.identifier_constant(self.previous.lexeme);

        if can_assign && self.matches(TokenKind::Equal) {
            self.expression();
            self.emit_op_with(OpCode::SetProperty, name);
        } else if self.matches(TokenKind::LeftParen) {
            let arg_count = self.argument_list();
            self.emit_op_with(OpCode::Invoke, name);
            self.emit_byte(arg_count);
        } else {
            self.emit_op_with(OpCode::GetProperty, name);
        }
    }

    fn this(&mut self, _can_assign: bool) {
        if self.classes.is_empty() {
            self.error("Can't use 'this' outside of a class.");
            return;
        }
        self.variable(false);
    }

    /// `super.name` (a bound method) or `super.name(args)` (an invocation).
    fn super_(&mut self, _can_assign: bool) {
        match self.classes.last().map(|class| class.has_superclass) {
            None => self.error("Can't use 'super' outside of a class."),
            Some(false) => self.error("Can't use 'super' in a class with no superclass."),
            Some(true) => {}
        }

        self.consume(TokenKind::Dot, "Expect '.' after 'super'.");
        self.consume(TokenKind::Identifier, "Expect superclass method name.");
        let name = self.identifier_constant(self.previous.lexeme);

        self.named_variable("this", false);
        if self.matches(TokenKind::LeftParen) {
            let arg_count = self.argument_list();
            self.named_variable("super", false);
            self.emit_op_with(OpCode::SuperInvoke, name);
            self.emit_byte(arg_count);
        } else {
            self.named_variable("super", false);
            self.emit_op_with(OpCode::GetSuper, name);
        }
    }

    // ----- Declarations -----

    fn declaration(&mut self) {
        self.nested(|p| {
            if p.matches(TokenKind::Class) {
                p.class_declaration();
            } else if p.matches(TokenKind::Fun) {
                p.fun_declaration();
            } else if p.matches(TokenKind::Var) {
                p.var_declaration();
            } else {
                p.statement();
            }
        });
        if self.panic_mode {
            self.synchronize();
        }
    }

    fn class_declaration(&mut self) {
        self.consume(TokenKind::Identifier, "Expect class name.");
        let class_name = self.previous.lexeme;
        let name_constant = self.identifier_constant(class_name);
        self.declare_variable();

        self.emit_op_with(OpCode::Class, name_constant);
        self.define_variable(name_constant);

        self.classes.push(ClassState {
            has_superclass: false,
        });

        let mut has_superclass = false;
        if self.matches(TokenKind::Less) {
            self.consume(TokenKind::Identifier, "Expect superclass name.");
            self.variable(false);
            if class_name == self.previous.lexeme {
                self.error("A class can't inherit from itself.");
            }

            // Methods capture the superclass through a local named "super"
            // in a scope around the class body.
            self.begin_scope();
            self.add_local("super");
            self.define_variable(0);

            self.named_variable(class_name, false);
            self.emit_op(OpCode::Inherit);
            has_superclass = true;
            if let Some(class) = self.classes.last_mut() {
                class.has_superclass = true;
            }
        }

        // The class stays on the stack while its methods are bound.
        self.named_variable(class_name, false);
        self.consume(TokenKind::LeftBrace, "Expect '{' before class body.");
        while !self.check(TokenKind::RightBrace) && !self.check(TokenKind::Eof) {
            self.method();
        }
        self.consume(TokenKind::RightBrace, "Expect '}' after class body.");
        self.emit_op(OpCode::Pop);

        if has_superclass {
            self.end_scope();
        }
        self.classes.pop();
    }

    fn method(&mut self) {
        self.consume(TokenKind::Identifier, "Expect method name.");
        let name = self.previous.lexeme;
        let constant = self.identifier_constant(name);
        let kind = if name == "init" {
            FunctionKind::Initializer
        } else {
            FunctionKind::Method
        };
        self.function(kind);
        self.emit_op_with(OpCode::Method, constant);
    }

    fn fun_declaration(&mut self) {
        let global = self.parse_variable("Expect function name.");
        // A function may refer to itself: its name is usable in its body.
        self.mark_initialized();
        self.function(FunctionKind::Function);
        self.define_variable(global);
    }

    /// Compiles a function's parameters and body (the name was just
    /// consumed) and emits the `Closure` that creates it.
    fn function(&mut self, kind: FunctionKind) {
        self.begin_function(kind);
        self.begin_scope();

        self.consume(TokenKind::LeftParen, "Expect '(' after function name.");
        if !self.check(TokenKind::RightParen) {
            loop {
                self.func.arity += 1;
                if self.func.arity > MAX_ARITY {
                    self.error_at_current("Can't have more than 255 parameters.");
                }
                let constant = self.parse_variable("Expect parameter name.");
                self.define_variable(constant);
                if !self.matches(TokenKind::Comma) {
                    break;
                }
            }
        }
        self.consume(TokenKind::RightParen, "Expect ')' after parameters.");
        self.consume(TokenKind::LeftBrace, "Expect '{' before function body.");
        self.block();
        // No `end_scope`: returning discards the whole frame.
        self.end_function();
    }

    fn var_declaration(&mut self) {
        let global = self.parse_variable("Expect variable name.");
        if self.matches(TokenKind::Equal) {
            self.expression();
        } else {
            self.emit_op(OpCode::Nil);
        }
        self.consume(
            TokenKind::Semicolon,
            "Expect ';' after variable declaration.",
        );
        self.define_variable(global);
    }

    // ----- Statements -----

    fn statement(&mut self) {
        self.nested(|p| {
            if p.matches(TokenKind::Print) {
                p.print_statement();
            } else if p.matches(TokenKind::For) {
                p.for_statement();
            } else if p.matches(TokenKind::If) {
                p.if_statement();
            } else if p.matches(TokenKind::Return) {
                p.return_statement();
            } else if p.matches(TokenKind::While) {
                p.while_statement();
            } else if p.matches(TokenKind::LeftBrace) {
                p.begin_scope();
                p.block();
                p.end_scope();
            } else {
                p.expression_statement();
            }
        });
    }

    /// The declarations of a block, up to and including its `}`.
    fn block(&mut self) {
        while !self.check(TokenKind::RightBrace) && !self.check(TokenKind::Eof) {
            self.declaration();
        }
        self.consume(TokenKind::RightBrace, "Expect '}' after block.");
    }

    fn print_statement(&mut self) {
        self.expression();
        self.consume(TokenKind::Semicolon, "Expect ';' after value.");
        self.emit_op(OpCode::Print);
    }

    fn expression_statement(&mut self) {
        self.expression();
        self.consume(TokenKind::Semicolon, "Expect ';' after expression.");
        self.emit_op(OpCode::Pop);
    }

    fn if_statement(&mut self) {
        self.consume(TokenKind::LeftParen, "Expect '(' after 'if'.");
        self.expression();
        self.consume(TokenKind::RightParen, "Expect ')' after condition.");

        let then_jump = self.emit_jump(OpCode::JumpIfFalse);
        self.emit_op(OpCode::Pop);
        self.statement();

        let else_jump = self.emit_jump(OpCode::Jump);
        self.patch_jump(then_jump);
        self.emit_op(OpCode::Pop);

        if self.matches(TokenKind::Else) {
            self.statement();
        }
        self.patch_jump(else_jump);
    }

    fn while_statement(&mut self) {
        let loop_start = self.func.chunk.code.len();
        self.consume(TokenKind::LeftParen, "Expect '(' after 'while'.");
        self.expression();
        self.consume(TokenKind::RightParen, "Expect ')' after condition.");

        let exit_jump = self.emit_jump(OpCode::JumpIfFalse);
        self.emit_op(OpCode::Pop);
        self.statement();
        self.emit_loop(loop_start);

        self.patch_jump(exit_jump);
        self.emit_op(OpCode::Pop);
    }

    /// `for (init; condition; increment) body`, desugared into jumps: the
    /// increment is compiled before the body but runs after it.
    fn for_statement(&mut self) {
        self.begin_scope();
        self.consume(TokenKind::LeftParen, "Expect '(' after 'for'.");
        if self.matches(TokenKind::Semicolon) {
            // No initializer.
        } else if self.matches(TokenKind::Var) {
            self.var_declaration();
        } else {
            self.expression_statement();
        }

        let mut loop_start = self.func.chunk.code.len();
        let mut exit_jump = None;
        if !self.matches(TokenKind::Semicolon) {
            self.expression();
            self.consume(TokenKind::Semicolon, "Expect ';' after loop condition.");
            exit_jump = Some(self.emit_jump(OpCode::JumpIfFalse));
            self.emit_op(OpCode::Pop);
        }

        if !self.matches(TokenKind::RightParen) {
            let body_jump = self.emit_jump(OpCode::Jump);
            let increment_start = self.func.chunk.code.len();
            self.expression();
            self.emit_op(OpCode::Pop);
            self.consume(TokenKind::RightParen, "Expect ')' after for clauses.");

            self.emit_loop(loop_start);
            loop_start = increment_start;
            self.patch_jump(body_jump);
        }

        self.statement();
        self.emit_loop(loop_start);

        if let Some(exit_jump) = exit_jump {
            self.patch_jump(exit_jump);
            self.emit_op(OpCode::Pop);
        }
        self.end_scope();
    }

    fn return_statement(&mut self) {
        if self.func.kind == FunctionKind::Script {
            self.error("Can't return from top-level code.");
        }

        if self.matches(TokenKind::Semicolon) {
            self.emit_return();
        } else {
            if self.func.kind == FunctionKind::Initializer {
                self.error("Can't return a value from an initializer.");
            }
            self.expression();
            self.consume(TokenKind::Semicolon, "Expect ';' after return value.");
            self.emit_op(OpCode::Return);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of `source`, for failure messages.
    fn excerpt(source: &str) -> String {
        source.chars().take(60).collect()
    }

    fn compiled(source: &str) -> Rc<FunctionProto> {
        match compile(source) {
            Ok(script) => script,
            Err(errors) => panic!("{:?} should compile, got {errors:?}", excerpt(source)),
        }
    }

    fn errors(source: &str) -> Vec<String> {
        match compile(source) {
            Ok(_) => panic!("{:?} should not compile", excerpt(source)),
            Err(errors) => errors,
        }
    }

    /// The function constant `index` of `function`'s chunk.
    fn function_constant(function: &FunctionProto, index: usize) -> &FunctionProto {
        match &function.chunk.constants[index] {
            Constant::Function(f) => f,
            other => panic!("constant {index} is {other:?}, not a function"),
        }
    }

    /// `chunk`'s code, one instruction per entry, as "Name operand...".
    /// Jump operands are shown as their 16-bit offset. Panics on malformed
    /// code, so it also checks every instruction has its operands.
    fn disassemble(function: &FunctionProto) -> Vec<String> {
        let code = &function.chunk.code;
        assert_eq!(code.len(), function.chunk.lines.len());
        let mut out = Vec::new();
        let mut i = 0;
        while i < code.len() {
            let op = OpCode::from_byte(code[i]).expect("valid opcode");
            let operands: Vec<String> = match op {
                OpCode::Constant
                | OpCode::GetLocal
                | OpCode::SetLocal
                | OpCode::GetGlobal
                | OpCode::DefineGlobal
                | OpCode::SetGlobal
                | OpCode::GetUpvalue
                | OpCode::SetUpvalue
                | OpCode::GetProperty
                | OpCode::SetProperty
                | OpCode::GetSuper
                | OpCode::Call
                | OpCode::Class
                | OpCode::Method => vec![code[i + 1].to_string()],
                OpCode::Invoke | OpCode::SuperInvoke => {
                    vec![code[i + 1].to_string(), code[i + 2].to_string()]
                }
                OpCode::Jump | OpCode::JumpIfFalse | OpCode::Loop => {
                    vec![u16::from_be_bytes([code[i + 1], code[i + 2]]).to_string()]
                }
                OpCode::Closure => {
                    let index = usize::from(code[i + 1]);
                    let upvalues = function_constant(function, index).upvalue_count;
                    code[i + 1..i + 2 + 2 * upvalues]
                        .iter()
                        .map(u8::to_string)
                        .collect()
                }
                _ => Vec::new(),
            };
            i += 1
                + operands.len()
                + if matches!(op, OpCode::Jump | OpCode::JumpIfFalse | OpCode::Loop) {
                    1
                } else {
                    0
                };
            out.push(
                std::iter::once(format!("{op:?}"))
                    .chain(operands)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        out
    }

    fn script_code(source: &str) -> Vec<String> {
        disassemble(&compiled(source))
    }

    fn number(constant: &Constant) -> f64 {
        match constant {
            Constant::Number(n) => *n,
            other => panic!("{other:?} is not a number"),
        }
    }

    fn string(constant: &Constant) -> &str {
        match constant {
            Constant::String(s) => s,
            other => panic!("{other:?} is not a string"),
        }
    }

    // ----- Bytecode -----

    #[test]
    fn print_addition() {
        let script = compiled("print 1 + 2;");
        assert_eq!(
            disassemble(&script),
            ["Constant 0", "Constant 1", "Add", "Print", "Nil", "Return"]
        );
        let constants: Vec<f64> = script.chunk.constants.iter().map(number).collect();
        assert_eq!(constants, [1.0, 2.0]);
        assert_eq!(script.name, None);
        assert_eq!(script.kind, FunctionKind::Script);
        assert_eq!(script.arity, 0);
        assert_eq!(script.upvalue_count, 0);
    }

    #[test]
    fn each_byte_carries_the_previous_tokens_line() {
        let script = compiled("print\n1\n+\n2\n;");
        // Constant 1 after `1` (line 2); Constant 2 and Add after `2`
        // (line 4); Print after `;` and the implicit return at EOF (line 5).
        assert_eq!(script.chunk.lines, [2, 2, 4, 4, 4, 5, 5, 5]);
    }

    #[test]
    fn operators() {
        assert_eq!(
            script_code("print 1 != 2 >= 3 <= 4;"),
            [
                "Constant 0",
                "Constant 1",
                "Constant 2",
                "Less",
                "Not",
                "Constant 3",
                "Greater",
                "Not",
                "Equal",
                "Not",
                "Print",
                "Nil",
                "Return"
            ]
        );
        assert_eq!(
            script_code("print -(1 + 2) * 3 / 4 - 5 == !true;"),
            [
                "Constant 0",
                "Constant 1",
                "Add",
                "Negate",
                "Constant 2",
                "Multiply",
                "Constant 3",
                "Divide",
                "Constant 4",
                "Subtract",
                "True",
                "Not",
                "Equal",
                "Print",
                "Nil",
                "Return"
            ]
        );
    }

    #[test]
    fn literals_and_strings() {
        let script = compiled("print nil; print \"hi\nthere\"; print 12.5;");
        assert_eq!(
            disassemble(&script),
            [
                "Nil",
                "Print",
                "Constant 0",
                "Print",
                "Constant 1",
                "Print",
                "Nil",
                "Return"
            ]
        );
        assert_eq!(string(&script.chunk.constants[0]), "hi\nthere");
        assert_eq!(number(&script.chunk.constants[1]), 12.5);
    }

    #[test]
    fn globals_add_a_constant_per_use() {
        let script = compiled("var a = 1; a = 2; print a;");
        assert_eq!(
            disassemble(&script),
            [
                "Constant 1",
                "DefineGlobal 0",
                "Constant 3",
                "SetGlobal 2",
                "Pop",
                "GetGlobal 4",
                "Print",
                "Nil",
                "Return"
            ]
        );
        let names: Vec<&str> = [0, 2, 4]
            .iter()
            .map(|&i| string(&script.chunk.constants[i]))
            .collect();
        assert_eq!(names, ["a", "a", "a"]);
    }

    #[test]
    fn locals_and_scopes() {
        assert_eq!(
            script_code("{ var a = 1; { var b = a; b = 2; } print a; }"),
            [
                "Constant 0",
                "GetLocal 1",
                "Constant 1",
                "SetLocal 2",
                "Pop",
                "Pop",
                "GetLocal 1",
                "Print",
                "Pop",
                "Nil",
                "Return"
            ]
        );
        // Shadowing in an inner scope is allowed; the innermost `a` wins.
        assert_eq!(
            script_code("{ var a = 1; { var b = a; var a = b; print a; } }"),
            [
                "Constant 0",
                "GetLocal 1",
                "GetLocal 2",
                "GetLocal 3",
                "Print",
                "Pop",
                "Pop",
                "Pop",
                "Nil",
                "Return"
            ]
        );
    }

    #[test]
    fn and_or() {
        assert_eq!(
            script_code("print true and false or nil;"),
            [
                "True",
                "JumpIfFalse 2",
                "Pop",
                "False",
                "JumpIfFalse 3",
                "Jump 2",
                "Pop",
                "Nil",
                "Print",
                "Nil",
                "Return"
            ]
        );
    }

    #[test]
    fn if_else() {
        assert_eq!(
            script_code("if (true) print 1; else print 2;"),
            [
                "True",
                "JumpIfFalse 7",
                "Pop",
                "Constant 0",
                "Print",
                "Jump 4",
                "Pop",
                "Constant 1",
                "Print",
                "Nil",
                "Return"
            ]
        );
    }

    #[test]
    fn while_loop() {
        assert_eq!(
            script_code("while (false) print 1;"),
            [
                "False",
                "JumpIfFalse 7",
                "Pop",
                "Constant 0",
                "Print",
                "Loop 11",
                "Pop",
                "Nil",
                "Return"
            ]
        );
    }

    #[test]
    fn for_loop() {
        assert_eq!(
            script_code("for (var i = 0; i < 2; i = i + 1) print i;"),
            [
                "Constant 0",
                "GetLocal 1",
                "Constant 1",
                "Less",
                "JumpIfFalse 21",
                "Pop",
                "Jump 11",
                "GetLocal 1",
                "Constant 2",
                "Add",
                "SetLocal 1",
                "Pop",
                "Loop 23",
                "GetLocal 1",
                "Print",
                "Loop 17",
                "Pop",
                "Pop",
                "Nil",
                "Return"
            ]
        );
        assert_eq!(
            script_code("for (;;) print 1;"),
            ["Constant 0", "Print", "Loop 6", "Nil", "Return"]
        );
    }

    #[test]
    fn functions_calls_and_closures() {
        let script = compiled(
            "fun outer() {
               var x = 1;
               fun inner() { x = x + 1; return x; }
               return inner;
             }
             outer()(1, 2);",
        );
        assert_eq!(
            disassemble(&script),
            [
                "Closure 1",
                "DefineGlobal 0",
                "GetGlobal 2",
                "Call 0",
                "Constant 3",
                "Constant 4",
                "Call 2",
                "Pop",
                "Nil",
                "Return"
            ]
        );
        let outer = function_constant(&script, 1);
        assert_eq!(outer.name.as_deref(), Some("outer"));
        assert_eq!(outer.kind, FunctionKind::Function);
        assert_eq!(outer.upvalue_count, 0);
        // `inner` captures local slot 1 (`x`).
        assert_eq!(
            disassemble(outer),
            [
                "Constant 0",
                "Closure 1 1 1",
                "GetLocal 2",
                "Return",
                "Nil",
                "Return"
            ]
        );
        let inner = function_constant(outer, 1);
        assert_eq!(inner.name.as_deref(), Some("inner"));
        assert_eq!(inner.upvalue_count, 1);
        assert_eq!(
            disassemble(inner),
            [
                "GetUpvalue 0",
                "Constant 0",
                "Add",
                "SetUpvalue 0",
                "Pop",
                "GetUpvalue 0",
                "Return",
                "Nil",
                "Return"
            ]
        );
    }

    #[test]
    fn parameters_and_arity() {
        let script = compiled("fun f(a, b) { return b; }");
        let f = function_constant(&script, 1);
        assert_eq!(f.arity, 2);
        assert_eq!(disassemble(f), ["GetLocal 2", "Return", "Nil", "Return"]);
    }

    #[test]
    fn captured_locals_are_closed_and_upvalues_flattened() {
        assert_eq!(
            script_code("{ var a = 1; fun f() { print a; } }"),
            [
                "Constant 0",
                "Closure 1 1 1",
                "Pop",
                "CloseUpvalue",
                "Nil",
                "Return"
            ]
        );

        let script = compiled("fun a() { var x; fun b() { fun c() { print x; } } }");
        let a = function_constant(&script, 1);
        assert_eq!(disassemble(a), ["Nil", "Closure 0 1 1", "Nil", "Return"]);
        let b = function_constant(a, 0);
        assert_eq!(disassemble(b), ["Closure 0 0 0", "Nil", "Return"]);
        let c = function_constant(b, 0);
        assert_eq!(disassemble(c), ["GetUpvalue 0", "Print", "Nil", "Return"]);
    }

    #[test]
    fn properties_and_invocations() {
        assert_eq!(
            script_code("a.b(1); a.c = a.d;"),
            [
                "GetGlobal 0",
                "Constant 2",
                "Invoke 1 1",
                "Pop",
                "GetGlobal 3",
                "GetGlobal 5",
                "GetProperty 6",
                "SetProperty 4",
                "Pop",
                "Nil",
                "Return"
            ]
        );
    }

    #[test]
    fn class_with_superclass_and_methods() {
        let script = compiled(
            "class A { method() { print \"A\"; } }
             class B < A {
               init(x) { this.x = x; return; }
               method() { super.method(); }
               get() { return super.method; }
             }
             B(1).method();",
        );
        assert_eq!(
            disassemble(&script),
            [
                "Class 0",
                "DefineGlobal 0",
                "GetGlobal 1",
                "Closure 3",
                "Method 2",
                "Pop",
                "Class 4",
                "DefineGlobal 4",
                "GetGlobal 5",
                "GetGlobal 6",
                "Inherit",
                "GetGlobal 7",
                "Closure 9",
                "Method 8",
                "Closure 11 1 1",
                "Method 10",
                "Closure 13 1 1",
                "Method 12",
                "Pop",
                "CloseUpvalue",
                "GetGlobal 14",
                "Constant 15",
                "Call 1",
                "Invoke 16 0",
                "Pop",
                "Nil",
                "Return"
            ]
        );

        let init = function_constant(&script, 9);
        assert_eq!(init.name.as_deref(), Some("init"));
        assert_eq!(init.kind, FunctionKind::Initializer);
        assert_eq!(init.arity, 1);
        assert_eq!(
            disassemble(init),
            [
                "GetLocal 0",
                "GetLocal 1",
                "SetProperty 0",
                "Pop",
                "GetLocal 0",
                "Return",
                "GetLocal 0",
                "Return"
            ]
        );

        let method = function_constant(&script, 11);
        assert_eq!(method.name.as_deref(), Some("method"));
        assert_eq!(method.kind, FunctionKind::Method);
        assert_eq!(method.upvalue_count, 1);
        assert_eq!(
            disassemble(method),
            [
                "GetLocal 0",
                "GetUpvalue 0",
                "SuperInvoke 0 0",
                "Pop",
                "Nil",
                "Return"
            ]
        );

        let get = function_constant(&script, 13);
        assert_eq!(
            disassemble(get),
            [
                "GetLocal 0",
                "GetUpvalue 0",
                "GetSuper 0",
                "Return",
                "Nil",
                "Return"
            ]
        );
    }

    #[test]
    fn this_in_a_closure_inside_a_method() {
        let script = compiled("class A { m() { fun f() { return this; } } }");
        let m = function_constant(&script, 3);
        assert_eq!(disassemble(m), ["Closure 0 1 0", "Nil", "Return"]);
    }

    // ----- Errors -----

    #[test]
    fn error_messages_match_clox() {
        let cases: &[(&str, &[&str])] = &[
            (
                "print 1",
                &["[line 1] Error at end: Expect ';' after value."],
            ),
            ("1 + ;", &["[line 1] Error at ';': Expect expression."]),
            ("\n\nprint", &["[line 3] Error at end: Expect expression."]),
            (
                "a + b = c;",
                &["[line 1] Error at '=': Invalid assignment target."],
            ),
            ("print @;", &["[line 1] Error: Unexpected character."]),
            ("print \"abc\n\n", &["[line 3] Error: Unterminated string."]),
            (
                "print ;\nvar 1;\nprint 2;",
                &[
                    "[line 1] Error at ';': Expect expression.",
                    "[line 2] Error at '1': Expect variable name.",
                ],
            ),
            (
                "1",
                &["[line 1] Error at end: Expect ';' after expression."],
            ),
            (
                "var a = 1",
                &["[line 1] Error at end: Expect ';' after variable declaration."],
            ),
            (
                "print (1;",
                &["[line 1] Error at ';': Expect ')' after expression."],
            ),
            (
                "f(1;",
                &["[line 1] Error at ';': Expect ')' after arguments."],
            ),
            (
                "a.;",
                &["[line 1] Error at ';': Expect property name after '.'."],
            ),
            (
                "{ print 1;",
                &["[line 1] Error at end: Expect '}' after block."],
            ),
            (
                "return 1;",
                &["[line 1] Error at 'return': Can't return from top-level code."],
            ),
            (
                "class A { init() { return 1; } }",
                &["[line 1] Error at 'return': Can't return a value from an initializer."],
            ),
            (
                "print this;",
                &["[line 1] Error at 'this': Can't use 'this' outside of a class."],
            ),
            (
                "fun f() { this; }",
                &["[line 1] Error at 'this': Can't use 'this' outside of a class."],
            ),
            (
                "super.x;",
                &["[line 1] Error at 'super': Can't use 'super' outside of a class."],
            ),
            (
                "class A { m() { super.m(); } }",
                &["[line 1] Error at 'super': Can't use 'super' in a class with no superclass."],
            ),
            (
                "class A < B { m() { super; } }",
                &["[line 1] Error at ';': Expect '.' after 'super'."],
            ),
            (
                "class A < B { m() { super.; } }",
                &["[line 1] Error at ';': Expect superclass method name."],
            ),
            (
                "class A < A {}",
                &["[line 1] Error at 'A': A class can't inherit from itself."],
            ),
            ("class {}", &["[line 1] Error at '{': Expect class name."]),
            (
                "class A < {}",
                &["[line 1] Error at '{': Expect superclass name."],
            ),
            (
                "class A }",
                &["[line 1] Error at '}': Expect '{' before class body."],
            ),
            (
                "class A {",
                &["[line 1] Error at end: Expect '}' after class body."],
            ),
            (
                "class A { 1 }",
                &[
                    "[line 1] Error at '1': Expect method name.",
                    "[line 1] Error at end: Expect '}' after block.",
                ],
            ),
            (
                "{ var a = a; }",
                &["[line 1] Error at 'a': Can't read local variable in its own initializer."],
            ),
            (
                "{ var a; var a; }",
                &["[line 1] Error at 'a': Already a variable with this name in this scope."],
            ),
            (
                "fun () {}",
                &["[line 1] Error at '(': Expect function name."],
            ),
            (
                "fun f {}",
                &["[line 1] Error at '{': Expect '(' after function name."],
            ),
            (
                "fun f(1) {}",
                &[
                    "[line 1] Error at '1': Expect parameter name.",
                    "[line 1] Error at end: Expect '}' after block.",
                ],
            ),
            (
                "fun f(a {}",
                &["[line 1] Error at '{': Expect ')' after parameters."],
            ),
            (
                "fun f() print 1;",
                &[
                    "[line 1] Error at 'print': Expect '{' before function body.",
                    "[line 1] Error at end: Expect '}' after block.",
                ],
            ),
            (
                "fun f() { return 1 }",
                &[
                    "[line 1] Error at '}': Expect ';' after return value.",
                    "[line 1] Error at end: Expect '}' after block.",
                ],
            ),
            (
                "if true) print 1;",
                &["[line 1] Error at 'true': Expect '(' after 'if'."],
            ),
            (
                "if (true print 1;",
                &["[line 1] Error at 'print': Expect ')' after condition."],
            ),
            (
                "while true) {}",
                &["[line 1] Error at 'true': Expect '(' after 'while'."],
            ),
            (
                "while (true {}",
                &["[line 1] Error at '{': Expect ')' after condition."],
            ),
            (
                "for var i;;) {}",
                &["[line 1] Error at 'var': Expect '(' after 'for'."],
            ),
            (
                "for (;true) {}",
                &["[line 1] Error at ')': Expect ';' after loop condition."],
            ),
            (
                "for (;;i {}",
                &["[line 1] Error at '{': Expect ')' after for clauses."],
            ),
            // Cases from the book's test suite, with clox's recovery: after
            // the first error, `synchronize` swallows the block's `}`.
            (
                "{\n  class Foo < Foo {}\n}\n",
                &[
                    "[line 2] Error at 'Foo': A class can't inherit from itself.",
                    "[line 4] Error at end: Expect '}' after block.",
                ],
            ),
            (
                "fun foo(a, b c, d, e, f) {}",
                &[
                    "[line 1] Error at 'c': Expect ')' after parameters.",
                    "[line 1] Error at end: Expect '}' after block.",
                ],
            ),
            (
                "super.foo(\"bar\");\nsuper.foo;",
                &[
                    "[line 1] Error at 'super': Can't use 'super' outside of a class.",
                    "[line 2] Error at 'super': Can't use 'super' outside of a class.",
                ],
            ),
            (
                "class A {}\nclass B < A { m() { (super).m(); } }",
                &["[line 2] Error at ')': Expect '.' after 'super'."],
            ),
        ];
        for (source, expected) in cases {
            assert_eq!(errors(source), *expected, "source: {source:?}");
        }
    }

    #[test]
    fn panic_mode_reports_one_error_per_statement() {
        // The scanner error silences "Expect expression." on the same
        // statement; synchronizing at `var` re-enables reporting.
        assert_eq!(
            errors("print @ # $;\nvar = 1;\nprint 1 +;"),
            [
                "[line 1] Error: Unexpected character.",
                "[line 2] Error at '=': Expect variable name.",
                "[line 3] Error at ';': Expect expression.",
            ]
        );
    }

    // ----- Limits -----

    /// `count` copies of `item(i)`, joined by `sep`.
    fn repeat(count: usize, sep: &str, item: impl Fn(usize) -> String) -> String {
        (0..count).map(item).collect::<Vec<_>>().join(sep)
    }

    #[test]
    fn constant_limit() {
        compiled(&repeat(256, " ", |i| format!("print {i};")));
        assert_eq!(
            errors(&repeat(257, " ", |i| format!("print {i};"))),
            ["[line 1] Error at '256': Too many constants in one chunk."]
        );
        // Identifiers are not deduplicated.
        compiled(&"a;".repeat(256));
        assert_eq!(
            errors(&"a;".repeat(257)),
            ["[line 1] Error at 'a': Too many constants in one chunk."]
        );
        // The limit is per function.
        compiled(&format!(
            "fun f() {{ {} }} {}",
            repeat(256, " ", |i| format!("print {i};")),
            repeat(254, " ", |i| format!("print {i};"))
        ));
    }

    #[test]
    fn local_limit() {
        // Slot 0 plus 255 declared locals.
        compiled(&format!(
            "{{ {} }}",
            repeat(255, " ", |i| format!("var a{i};"))
        ));
        assert_eq!(
            errors(&format!(
                "{{ {} }}",
                repeat(256, " ", |i| format!("var a{i};"))
            )),
            ["[line 1] Error at 'a255': Too many local variables in function."]
        );
    }

    #[test]
    fn parameter_and_argument_limits() {
        let params = |n| repeat(n, ", ", |i| format!("p{i}"));
        compiled(&format!("fun f({}) {{}}", params(255)));
        assert_eq!(
            errors(&format!("fun f({}) {{}}", params(256))),
            ["[line 1] Error at 'p255': Can't have more than 255 parameters."]
        );

        let call = |n| format!("f({});", repeat(n, ", ", |_| "nil".to_owned()));
        let script = compiled(&call(255));
        assert!(disassemble(&script).contains(&"Call 255".to_owned()));
        assert_eq!(
            errors(&call(256)),
            ["[line 1] Error at 'nil': Can't have more than 255 arguments."]
        );
    }

    #[test]
    fn upvalue_limit() {
        // `outer` and `middle` each hold 254 locals plus their nested
        // function; `inner` captures every one of them.
        let program = |b_uses: usize| {
            format!(
                "fun outer() {{ {} fun middle() {{ {} fun inner() {{ {} {} }} }} }}",
                repeat(254, " ", |i| format!("var a{i};")),
                repeat(254, " ", |i| format!("var b{i};")),
                repeat(254, " ", |i| format!("a{i};")),
                repeat(b_uses, " ", |i| format!("b{i};")),
            )
        };
        let script = compiled(&program(2));
        let outer = function_constant(&script, 1);
        let middle = function_constant(outer, 0);
        assert_eq!(middle.upvalue_count, 254);
        let inner = function_constant(middle, 0);
        assert_eq!(inner.upvalue_count, 256);

        assert_eq!(
            errors(&program(3)),
            ["[line 1] Error at 'b2': Too many closure variables in function."]
        );
    }

    #[test]
    fn jump_limits() {
        // The then-jump skips a Pop, the body and the else-branch's Jump:
        // with 32765 two-byte statements, 65534 bytes.
        compiled(&format!("if (true) {{ {} }}", "nil;".repeat(32765)));
        assert_eq!(
            errors(&format!("if (true) {{ {} }}", "nil;".repeat(32766))),
            ["[line 1] Error at '}': Too much code to jump over."]
        );

        compiled(&format!("while (true) {{ {} }}", "nil;".repeat(32763)));
        assert_eq!(
            errors(&format!("while (true) {{ {} }}", "nil;".repeat(32764))),
            ["[line 1] Error at '}': Loop body too large."]
        );
    }

    // ----- Nesting (deliberate deviation) -----

    #[test]
    fn nesting_up_to_the_limit_compiles() {
        // `print (...)`: a declaration, a statement, the outer expression,
        // one level per parenthesis and the innermost operand.
        let parens = |n| format!("print {}1{};", "(".repeat(n), ")".repeat(n));
        compiled(&parens(MAX_NESTING - 3));
        assert_eq!(
            errors(&parens(MAX_NESTING - 2)),
            ["[line 1] Error at '1': Too much nesting."]
        );

        // One level per function (its declaration), the costliest path.
        let funs = |n| format!("{}{}", "fun f() {".repeat(n), "}".repeat(n));
        compiled(&funs(MAX_NESTING));
        assert_eq!(
            errors(&funs(MAX_NESTING + 1)),
            ["[line 1] Error at 'fun': Too much nesting."]
        );

        let depth = MAX_NESTING / 2 - 2;
        compiled(&format!("print {}1;", "-".repeat(depth)));
        compiled(&format!("{}{}", "{".repeat(depth), "}".repeat(depth)));
        compiled(&format!("{}print 1;", "if (true) ".repeat(depth)));
        compiled(&format!(
            "fun g(f) {{ {}{}; }}",
            "f(".repeat(depth),
            ")".repeat(depth)
        ));
        compiled(&format!("{{ var a; {}1; }}", "a = ".repeat(depth)));
    }

    #[test]
    fn absurd_nesting_is_an_error_not_a_crash() {
        let depth = 100_000;
        let cases = [
            (
                format!("print {}1{};", "(".repeat(depth), ")".repeat(depth)),
                "[line 1] Error at '(': Too much nesting.",
            ),
            (
                format!("print {}1;", "!".repeat(depth)),
                "[line 1] Error at '!': Too much nesting.",
            ),
            (
                format!("{}\n{}", "{".repeat(depth), "}".repeat(depth)),
                "[line 1] Error at '{': Too much nesting.",
            ),
            (
                "fun f() {".repeat(depth),
                "[line 1] Error at 'fun': Too much nesting.",
            ),
            (
                format!("fun g(f) {{ {}", "f(".repeat(depth)),
                "[line 1] Error at 'f': Too much nesting.",
            ),
        ];
        for (source, expected) in cases {
            assert_eq!(errors(&source), [expected]);
        }
    }
}
