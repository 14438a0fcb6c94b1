//! Bytecode of the Lox interpreter: clox's instruction set (chapter 14–29
//! of *Crafting Interpreters*), as the compiler emits it and the VM runs it.
//!
//! The compiler's output does not touch the garbage-collected heap: string
//! and function constants are plain Rust values here, and the VM turns each
//! into a heap object (an interned `LoxString`, a `Function`) once, when it
//! loads the script. From then on every runtime value lives on spanheap's
//! heap, as in clox.
//!
//! Invariants: every operand the compiler emits is in range — constant
//! indices index `constants`, local slots and upvalue indices fit the
//! function, jump offsets land inside `code` — so the VM may index without
//! checks beyond Rust's own.

use std::rc::Rc;

/// One instruction's opcode; operands follow it in `Chunk::code`.
/// Operand encodings are clox's: one-byte operands unless noted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OpCode {
    /// `[const]`: push `constants[const]`.
    Constant,
    Nil,
    True,
    False,
    Pop,
    /// `[slot]`: push the frame's local `slot`.
    GetLocal,
    /// `[slot]`: store the top of stack into local `slot` (no pop).
    SetLocal,
    /// `[name const]`.
    GetGlobal,
    /// `[name const]`: pop into a new global.
    DefineGlobal,
    /// `[name const]`: assign an existing global (no pop).
    SetGlobal,
    /// `[index]`.
    GetUpvalue,
    /// `[index]`.
    SetUpvalue,
    /// `[name const]`.
    GetProperty,
    /// `[name const]`.
    SetProperty,
    /// `[name const]`: pops the superclass, then `this`.
    GetSuper,
    Equal,
    Greater,
    Less,
    Add,
    Subtract,
    Multiply,
    Divide,
    Not,
    Negate,
    Print,
    /// `[u16 big-endian offset]`: forward.
    Jump,
    /// `[u16 big-endian offset]`: forward if the top of stack is falsey (no pop).
    JumpIfFalse,
    /// `[u16 big-endian offset]`: backward.
    Loop,
    /// `[arg count]`.
    Call,
    /// `[name const][arg count]`.
    Invoke,
    /// `[name const][arg count]`: pops the superclass first.
    SuperInvoke,
    /// `[function const]` then, per upvalue, `[is_local (0/1)][index]`.
    Closure,
    CloseUpvalue,
    Return,
    /// `[name const]`.
    Class,
    /// Stack: superclass, subclass.
    Inherit,
    /// `[name const]`: stack: class, closure.
    Method,
}

// The VM dispatches on the byte itself (vm.rs, `op`); the compiler's tests
// decode bytecode with these.
#[cfg_attr(not(test), allow(dead_code))]
impl OpCode {
    /// Every opcode, indexed by its byte.
    pub const ALL: [OpCode; 37] = [
        OpCode::Constant,
        OpCode::Nil,
        OpCode::True,
        OpCode::False,
        OpCode::Pop,
        OpCode::GetLocal,
        OpCode::SetLocal,
        OpCode::GetGlobal,
        OpCode::DefineGlobal,
        OpCode::SetGlobal,
        OpCode::GetUpvalue,
        OpCode::SetUpvalue,
        OpCode::GetProperty,
        OpCode::SetProperty,
        OpCode::GetSuper,
        OpCode::Equal,
        OpCode::Greater,
        OpCode::Less,
        OpCode::Add,
        OpCode::Subtract,
        OpCode::Multiply,
        OpCode::Divide,
        OpCode::Not,
        OpCode::Negate,
        OpCode::Print,
        OpCode::Jump,
        OpCode::JumpIfFalse,
        OpCode::Loop,
        OpCode::Call,
        OpCode::Invoke,
        OpCode::SuperInvoke,
        OpCode::Closure,
        OpCode::CloseUpvalue,
        OpCode::Return,
        OpCode::Class,
        OpCode::Inherit,
        OpCode::Method,
    ];

    /// The opcode of byte `b`, if it is one.
    pub fn from_byte(b: u8) -> Option<OpCode> {
        Self::ALL.get(b as usize).copied()
    }
}

/// A constant as the compiler produces it.
#[derive(Debug)]
pub enum Constant {
    Number(f64),
    /// A string literal or an identifier (global, property, method and
    /// class names).
    String(Rc<str>),
    /// A nested function (the operand of `Closure`).
    Function(Rc<FunctionProto>),
}

/// What kind of function a prototype is (clox's `FunctionType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionKind {
    Script,
    Function,
    Method,
    Initializer,
}

/// A compiled function: clox's `ObjFunction` before it is put on the heap.
#[derive(Debug)]
pub struct FunctionProto {
    /// `None` for the top-level script.
    pub name: Option<Rc<str>>,
    pub arity: u8,
    pub upvalue_count: usize,
    /// What the compiler compiled it as (the VM does not need it: the
    /// bytecode already differs; the compiler's tests read it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub kind: FunctionKind,
    pub chunk: Chunk,
}

/// A function's code: clox's `Chunk`.
#[derive(Debug, Default)]
pub struct Chunk {
    pub code: Vec<u8>,
    /// Source line of each byte of `code` (same length).
    pub lines: Vec<u32>,
    pub constants: Vec<Constant>,
}

impl Chunk {
    /// Appends one byte from source line `line`.
    pub fn write(&mut self, byte: u8, line: u32) {
        self.code.push(byte);
        self.lines.push(line);
    }

    /// Adds a constant and returns its index (the compiler checks the
    /// 256-constant limit).
    pub fn add_constant(&mut self, c: Constant) -> usize {
        self.constants.push(c);
        self.constants.len() - 1
    }
}
