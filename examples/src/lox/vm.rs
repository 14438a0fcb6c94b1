//! The Lox virtual machine on spanheap (clox's `vm.c`, chapters 15–29).
//!
//! **Where the VM's state lives.** Everything clox keeps in its `VM`
//! struct that points into the heap — the value stack, the call frames,
//! the open upvalues, the globals and the `"init"` string — is one GC
//! object, [`VmState`], held by a [`Root`]. The dispatch loop runs inside
//! one never-closed `Scope` of the interpreter's `Mutator`, in slices: a
//! slice re-reads the state from the root, borrows the stack and the
//! frames (`GcRefCell::borrow_mut`) once, runs up to `budget`
//! instructions with the current frame's code, ip and base in locals, and
//! writes the ip back; between slices the loop calls `Scope::safepoint`,
//! where a collection may run or advance. Inside a slice `Gc` pointers in
//! Rust locals are safe (no collection frees anything while the scope has
//! not passed a safepoint; the borrow checker rejects a `Gc` held across
//! `safepoint`). `--gc-stress` uses a budget of one instruction, so that a
//! collection can run after every allocating instruction.
//!
//! **Strings** are interned through a weak table ([`Strings`]): the table
//! holds `spanheap::Weak` handles, so an entry vanishes when its string
//! dies, as clox's `tableRemoveWhite` makes it. Entries found dead are
//! replaced on lookup and purged when the table has grown.
//!
//! **Errors.** Runtime errors carry clox's messages and a stack trace
//! (innermost frame first); an allocation failure (heap or memory limit)
//! is a runtime error too, not an abort.
//!
//! Invariants of a slice: `frames` is non-empty; the current frame's
//! `base` is within `stack`; every open upvalue's slot is below the stack
//! top, and `open` is sorted by slot (ascending).

use crate::chunk::{Constant, FunctionProto};
use crate::object::{
    BoundMethod, Class, Closure, Function, Instance, LoxStr, Native, NativeFn, Table, UpLoc,
    Upvalue, Value, hash_str,
};
use spanheap::{AllocError, Gc, GcRefCell, Heap, Mutator, Root, Scope, Trace, Weak};
use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

/// clox's `FRAMES_MAX`.
pub const FRAMES_MAX: usize = 64;

/// Instructions per slice between safepoints.
const BUDGET: u32 = 4096;

/// Each opcode's byte, for matching on the byte in the dispatch loop.
#[allow(non_upper_case_globals)]
mod op {
    use crate::chunk::OpCode;
    pub const Constant: u8 = OpCode::Constant as u8;
    pub const Nil: u8 = OpCode::Nil as u8;
    pub const True: u8 = OpCode::True as u8;
    pub const False: u8 = OpCode::False as u8;
    pub const Pop: u8 = OpCode::Pop as u8;
    pub const GetLocal: u8 = OpCode::GetLocal as u8;
    pub const SetLocal: u8 = OpCode::SetLocal as u8;
    pub const GetGlobal: u8 = OpCode::GetGlobal as u8;
    pub const DefineGlobal: u8 = OpCode::DefineGlobal as u8;
    pub const SetGlobal: u8 = OpCode::SetGlobal as u8;
    pub const GetUpvalue: u8 = OpCode::GetUpvalue as u8;
    pub const SetUpvalue: u8 = OpCode::SetUpvalue as u8;
    pub const GetProperty: u8 = OpCode::GetProperty as u8;
    pub const SetProperty: u8 = OpCode::SetProperty as u8;
    pub const GetSuper: u8 = OpCode::GetSuper as u8;
    pub const Equal: u8 = OpCode::Equal as u8;
    pub const Greater: u8 = OpCode::Greater as u8;
    pub const Less: u8 = OpCode::Less as u8;
    pub const Add: u8 = OpCode::Add as u8;
    pub const Subtract: u8 = OpCode::Subtract as u8;
    pub const Multiply: u8 = OpCode::Multiply as u8;
    pub const Divide: u8 = OpCode::Divide as u8;
    pub const Not: u8 = OpCode::Not as u8;
    pub const Negate: u8 = OpCode::Negate as u8;
    pub const Print: u8 = OpCode::Print as u8;
    pub const Jump: u8 = OpCode::Jump as u8;
    pub const JumpIfFalse: u8 = OpCode::JumpIfFalse as u8;
    pub const Loop: u8 = OpCode::Loop as u8;
    pub const Call: u8 = OpCode::Call as u8;
    pub const Invoke: u8 = OpCode::Invoke as u8;
    pub const SuperInvoke: u8 = OpCode::SuperInvoke as u8;
    pub const Closure: u8 = OpCode::Closure as u8;
    pub const CloseUpvalue: u8 = OpCode::CloseUpvalue as u8;
    pub const Return: u8 = OpCode::Return as u8;
    pub const Class: u8 = OpCode::Class as u8;
    pub const Inherit: u8 = OpCode::Inherit as u8;
    pub const Method: u8 = OpCode::Method as u8;
}

/// One call frame (clox's `CallFrame`).
#[derive(Clone, Copy, Trace)]
pub struct Frame<'gc> {
    pub closure: Gc<'gc, Closure<'gc>>,
    /// Offset of the next instruction in the function's code.
    pub ip: u32,
    /// Stack slot of the frame's slot 0 (the callee or `this`).
    pub base: u32,
}

/// The VM's heap-side state, one rooted GC object.
#[derive(Trace)]
pub struct VmState<'gc> {
    pub stack: GcRefCell<'gc, Vec<Value<'gc>>>,
    pub frames: GcRefCell<'gc, Vec<Frame<'gc>>>,
    /// Open upvalues, sorted by stack slot.
    pub open: GcRefCell<'gc, Vec<Gc<'gc, Upvalue<'gc>>>>,
    pub globals: GcRefCell<'gc, Table<'gc>>,
    pub init: Gc<'gc, LoxStr>,
}

/// Interned strings with one hash: their contents and weak handles.
type Bucket = Vec<(Box<str>, Weak<LoxStr>)>;

/// The string intern table: contents → weak handle, bucketed by hash.
#[derive(Default)]
pub struct Strings {
    buckets: HashMap<u32, Bucket>,
    entries: usize,
    /// Purge dead entries when `entries` reaches this.
    purge_at: usize,
}

impl Strings {
    /// The interned string with contents `s`, allocating it if no live
    /// one exists.
    pub fn intern<'gc>(
        &mut self,
        cx: &'gc Scope<'_>,
        s: &str,
    ) -> Result<Gc<'gc, LoxStr>, AllocError> {
        let hash = hash_str(s);
        let bucket = self.buckets.entry(hash).or_default();
        let mut dead = None;
        for (i, (k, w)) in bucket.iter().enumerate() {
            if &**k == s {
                if let Some(g) = w.upgrade(cx) {
                    return Ok(g);
                }
                dead = Some(i);
                break;
            }
        }
        let g = cx.alloc(LoxStr {
            hash,
            chars: s.to_string(),
        })?;
        let w = cx.downgrade(g);
        match dead {
            Some(i) => bucket[i].1 = w,
            None => {
                bucket.push((s.into(), w));
                self.entries += 1;
                if self.entries >= self.purge_at {
                    self.purge();
                }
            }
        }
        Ok(g)
    }

    /// Drops the entries whose strings died.
    fn purge(&mut self) {
        self.buckets.retain(|_, b| {
            b.retain(|(_, w)| !w.is_dead());
            !b.is_empty()
        });
        self.entries = self.buckets.values().map(Vec::len).sum();
        self.purge_at = (self.entries * 2).max(1024);
    }

    /// Live + not yet purged entries.
    pub fn len(&self) -> usize {
        self.entries
    }
}

/// A runtime error: clox's message and stack trace.
#[derive(Debug)]
pub struct RuntimeError {
    pub message: String,
    /// `[line N] in f()` / `[line N] in script`, innermost first.
    pub trace: Vec<String>,
}

/// How a run ended.
pub enum Outcome {
    Ok,
    RuntimeError(RuntimeError),
}

/// The interpreter: a heap, its mutator, the rooted VM state.
pub struct Vm {
    m: Mutator,
    strings: Strings,
    state: Option<Root<VmState<'static>>>,
    budget: u32,
    start: Instant,
}

/// What a slice returns when it stops without error.
enum Step {
    /// Budget used up: pass a safepoint and go on.
    Yield,
    /// The script returned.
    Done,
}

impl Vm {
    /// A VM on `heap`. `stress`: one instruction per slice.
    pub fn new(heap: &Heap, stress: bool) -> Vm {
        let m = heap.mutator();
        Vm {
            m,
            strings: Strings::default(),
            state: None,
            budget: if stress { 1 } else { BUDGET },
            start: Instant::now(),
        }
    }

    /// The interned-string table's size (for `--stats`).
    pub fn interned(&self) -> usize {
        self.strings.len()
    }

    /// Runs a compiled script to completion; `out` receives `print`s.
    pub fn interpret(&mut self, script: &FunctionProto, out: &mut dyn Write) -> Outcome {
        let Vm {
            m,
            strings,
            state,
            budget,
            start,
            ..
        } = self;
        let budget = *budget;
        let start = *start;
        m.scope(|cx| {
            let root = match load(cx, strings, script) {
                Ok(r) => r,
                Err(e) => {
                    return Outcome::RuntimeError(RuntimeError {
                        message: alloc_message(e),
                        trace: Vec::new(),
                    });
                }
            };
            *state = Some(root);
            let root = state.as_ref().expect("just set");
            loop {
                let step = {
                    let st = root.get(cx);
                    run_slice(cx, strings, st, budget, start, out)
                };
                match step {
                    Ok(Step::Yield) => cx.safepoint(),
                    Ok(Step::Done) => return Outcome::Ok,
                    Err(e) => return Outcome::RuntimeError(e),
                }
            }
        })
    }
}

fn alloc_message(e: AllocError) -> String {
    format!("Out of memory: {e}.")
}

/// Puts the script on the heap: its functions, interned constants, the
/// globals with `clock`, and the stack with the script's closure in slot
/// 0 and one frame.
fn load(
    cx: &Scope<'_>,
    strings: &mut Strings,
    script: &FunctionProto,
) -> Result<Root<VmState<'static>>, AllocError> {
    let function = load_function(cx, strings, script)?;
    let closure = cx.alloc(Closure {
        function,
        upvalues: Vec::new(),
    })?;
    let mut globals = Table::default();
    let clock = strings.intern(cx, "clock")?;
    let native = cx.alloc(Native {
        function: NativeFn::Clock,
    })?;
    globals.set(clock, Value::Native(native));
    let init = strings.intern(cx, "init")?;
    let mut stack = Vec::with_capacity(256);
    stack.push(Value::Closure(closure));
    let st = cx.alloc(VmState {
        stack: GcRefCell::new(stack),
        frames: GcRefCell::new(vec![Frame {
            closure,
            ip: 0,
            base: 0,
        }]),
        open: GcRefCell::new(Vec::new()),
        globals: GcRefCell::new(globals),
        init,
    })?;
    Ok(cx.root(st))
}

fn load_function<'gc>(
    cx: &'gc Scope<'_>,
    strings: &mut Strings,
    proto: &FunctionProto,
) -> Result<Gc<'gc, Function<'gc>>, AllocError> {
    let mut constants = Vec::with_capacity(proto.chunk.constants.len());
    for c in &proto.chunk.constants {
        constants.push(match c {
            Constant::Number(n) => Value::Number(*n),
            Constant::String(s) => Value::Str(strings.intern(cx, s)?),
            Constant::Function(f) => Value::Function(load_function(cx, strings, f)?),
        });
    }
    let name = match &proto.name {
        Some(n) => Some(strings.intern(cx, n)?),
        None => None,
    };
    cx.alloc(Function {
        arity: proto.arity,
        upvalue_count: u16::try_from(proto.upvalue_count).unwrap_or(u16::MAX),
        name,
        code: proto.chunk.code.clone(),
        lines: proto.chunk.lines.clone(),
        constants,
    })
}

/// The stack trace of `frames` (innermost first), the current frame's ip
/// saved.
fn stack_trace(frames: &[Frame<'_>]) -> Vec<String> {
    frames
        .iter()
        .rev()
        .map(|f| {
            let func = &f.closure.function;
            let line = func
                .lines
                .get((f.ip as usize).saturating_sub(1))
                .copied()
                .unwrap_or(0);
            match func.name {
                Some(n) => format!("[line {line}] in {}()", n.chars),
                None => format!("[line {line}] in script"),
            }
        })
        .collect()
}

/// Runs up to `budget` instructions.
fn run_slice<'gc>(
    cx: &'gc Scope<'_>,
    strings: &mut Strings,
    st: Gc<'gc, VmState<'gc>>,
    budget: u32,
    start: Instant,
    out: &mut dyn Write,
) -> Result<Step, RuntimeError> {
    let st = Gc::get_ref(st);
    // The slice's working set, borrowed once (each borrow runs the
    // barrier once; a mark that meets a borrowed cell leaves it to us).
    let mut stack_guard = st.stack.borrow_mut(cx);
    let mut frames_guard = st.frames.borrow_mut(cx);
    let mut open_guard = st.open.borrow_mut(cx);
    let mut globals_guard = st.globals.borrow_mut(cx);
    // Plain references for the loop (the guards stay alive until the
    // slice returns).
    let stack: &mut Vec<Value<'gc>> = &mut stack_guard;
    let frames: &mut Vec<Frame<'gc>> = &mut frames_guard;
    let open: &mut Vec<Gc<'gc, Upvalue<'gc>>> = &mut open_guard;
    let globals: &mut Table<'gc> = &mut globals_guard;
    let mut frame = *frames.last().expect("a slice runs with a frame");
    let mut closure = Gc::get_ref(frame.closure);
    let mut func = Gc::get_ref(closure.function);
    let mut code: &'gc [u8] = &func.code;
    let mut ip = frame.ip as usize;
    let mut base = frame.base as usize;

    // Saves the current frame's ip (before a call, a return or an error).
    macro_rules! save_ip {
        () => {
            if let Some(f) = frames.last_mut() {
                f.ip = ip as u32;
            }
        };
    }
    // Reloads the current frame's locals from the top frame.
    macro_rules! load_frame {
        () => {{
            frame = *frames.last().expect("a frame");
            closure = Gc::get_ref(frame.closure);
            func = Gc::get_ref(closure.function);
            code = &func.code;
            ip = frame.ip as usize;
            base = frame.base as usize;
        }};
    }
    macro_rules! runtime_error {
        ($($arg:tt)*) => {{
            save_ip!();
            let trace = stack_trace(frames);
            return Err(RuntimeError { message: format!($($arg)*), trace });
        }};
    }
    macro_rules! alloc {
        ($e:expr) => {
            match cx.alloc($e) {
                Ok(g) => g,
                Err(e) => runtime_error!("{}", alloc_message(e)),
            }
        };
    }
    macro_rules! read_byte {
        () => {{
            let b = code[ip];
            ip += 1;
            b
        }};
    }
    macro_rules! read_u16 {
        () => {{
            let v = u16::from_be_bytes([code[ip], code[ip + 1]]);
            ip += 2;
            v as usize
        }};
    }
    macro_rules! read_constant {
        () => {
            func.constants[read_byte!() as usize]
        };
    }
    macro_rules! read_string {
        () => {
            match read_constant!() {
                Value::Str(s) => s,
                _ => unreachable!("the compiler emits string constants for names"),
            }
        };
    }
    macro_rules! pop {
        () => {
            stack.pop().expect("the compiler balances the stack")
        };
    }
    macro_rules! peek {
        ($d:expr) => {
            stack[stack.len() - 1 - $d]
        };
    }
    macro_rules! binary_num {
        ($op:tt, $wrap:expr) => {{
            match (peek!(1), peek!(0)) {
                (Value::Number(a), Value::Number(b)) => {
                    stack.pop();
                    let top = stack.len() - 1;
                    stack[top] = $wrap(a $op b);
                }
                _ => runtime_error!("Operands must be numbers."),
            }
        }};
    }
    // Calls `callee` with the `argc` values on top of the stack
    // (clox's `callValue`).
    macro_rules! call_value {
        ($callee:expr, $argc:expr) => {{
            let argc: usize = $argc;
            match $callee {
                Value::Closure(c) => call_closure!(c, argc),
                Value::Bound(b) => {
                    let slot = stack.len() - argc - 1;
                    stack[slot] = b.receiver;
                    call_closure!(b.method, argc);
                }
                Value::Class(class) => {
                    let inst = alloc!(Instance {
                        class,
                        fields: GcRefCell::new(Table::default()),
                    });
                    let slot = stack.len() - argc - 1;
                    stack[slot] = Value::Instance(inst);
                    let init = class.methods.borrow().get(st.init);
                    match init {
                        Some(Value::Closure(init)) => call_closure!(init, argc),
                        _ if argc != 0 => {
                            runtime_error!("Expected 0 arguments but got {argc}.")
                        }
                        _ => {}
                    }
                }
                Value::Native(n) => {
                    let result = match n.function {
                        NativeFn::Clock => Value::Number(start.elapsed().as_secs_f64()),
                    };
                    let new_len = stack.len() - argc - 1;
                    stack.truncate(new_len);
                    stack.push(result);
                }
                _ => runtime_error!("Can only call functions and classes."),
            }
        }};
    }
    // clox's `call`: a new frame for closure `c`.
    macro_rules! call_closure {
        ($c:expr, $argc:expr) => {{
            let c: Gc<'gc, Closure<'gc>> = $c;
            let argc: usize = $argc;
            let arity = c.function.arity as usize;
            if argc != arity {
                runtime_error!("Expected {arity} arguments but got {argc}.");
            }
            if frames.len() == FRAMES_MAX {
                runtime_error!("Stack overflow.");
            }
            save_ip!();
            frames.push(Frame {
                closure: c,
                ip: 0,
                base: (stack.len() - argc - 1) as u32,
            });
            load_frame!();
        }};
    }
    // clox's `invokeFromClass`.
    macro_rules! invoke_from_class {
        ($class:expr, $name:expr, $argc:expr) => {{
            let name: Gc<'gc, LoxStr> = $name;
            let method = $class.methods.borrow().get(name);
            match method {
                Some(Value::Closure(m)) => call_closure!(m, $argc),
                _ => runtime_error!("Undefined property '{}'.", name.chars),
            }
        }};
    }
    // clox's `bindMethod`: replaces the receiver on top with a bound method.
    macro_rules! bind_method {
        ($class:expr, $name:expr) => {{
            let name: Gc<'gc, LoxStr> = $name;
            let method = $class.methods.borrow().get(name);
            match method {
                Some(Value::Closure(m)) => {
                    let bound = alloc!(BoundMethod {
                        receiver: peek!(0),
                        method: m,
                    });
                    let top = stack.len() - 1;
                    stack[top] = Value::Bound(bound);
                }
                _ => runtime_error!("Undefined property '{}'.", name.chars),
            }
        }};
    }

    for _ in 0..budget {
        // One jump table on the byte (matching on `OpCode::from_byte`
        // would add a table load and a second dispatch).
        match read_byte!() {
            op::Constant => {
                let v = read_constant!();
                stack.push(v);
            }
            op::Nil => stack.push(Value::Nil),
            op::True => stack.push(Value::Bool(true)),
            op::False => stack.push(Value::Bool(false)),
            op::Pop => {
                stack.pop();
            }
            op::GetLocal => {
                let slot = read_byte!() as usize;
                let v = stack[base + slot];
                stack.push(v);
            }
            op::SetLocal => {
                let slot = read_byte!() as usize;
                stack[base + slot] = peek!(0);
            }
            op::GetGlobal => {
                let name = read_string!();
                let v = globals.get(name);
                match v {
                    Some(v) => stack.push(v),
                    None => runtime_error!("Undefined variable '{}'.", name.chars),
                }
            }
            op::DefineGlobal => {
                let name = read_string!();
                let v = pop!();
                globals.set(name, v);
            }
            op::SetGlobal => {
                let name = read_string!();
                let v = peek!(0);
                match globals.get_mut(name) {
                    Some(slot) => *slot = v,
                    None => runtime_error!("Undefined variable '{}'.", name.chars),
                }
            }
            op::GetUpvalue => {
                let i = read_byte!() as usize;
                let v = match *closure.upvalues[i].loc.borrow() {
                    UpLoc::Open(s) => stack[s as usize],
                    UpLoc::Closed(v) => v,
                };
                stack.push(v);
            }
            op::SetUpvalue => {
                let i = read_byte!() as usize;
                let v = peek!(0);
                let up = closure.upvalues[i];
                let open = match *up.loc.borrow() {
                    UpLoc::Open(s) => Some(s),
                    UpLoc::Closed(_) => None,
                };
                match open {
                    Some(s) => stack[s as usize] = v,
                    None => *up.loc.borrow_mut(cx) = UpLoc::Closed(v),
                }
            }
            op::GetProperty => {
                let name = read_string!();
                let Value::Instance(inst) = peek!(0) else {
                    runtime_error!("Only instances have properties.");
                };
                let field = inst.fields.borrow().get(name);
                match field {
                    Some(v) => {
                        let top = stack.len() - 1;
                        stack[top] = v;
                    }
                    None => bind_method!(inst.class, name),
                }
            }
            op::SetProperty => {
                let name = read_string!();
                let Value::Instance(inst) = peek!(1) else {
                    runtime_error!("Only instances have fields.");
                };
                let v = pop!();
                inst.fields.borrow_mut(cx).set(name, v);
                let top = stack.len() - 1;
                stack[top] = v;
            }
            op::GetSuper => {
                let name = read_string!();
                let Value::Class(superclass) = pop!() else {
                    unreachable!("the compiler loads a class for 'super'");
                };
                bind_method!(superclass, name);
            }
            op::Equal => {
                let b = pop!();
                let a = pop!();
                stack.push(Value::Bool(a.equals(b)));
            }
            op::Greater => binary_num!(>, Value::Bool),
            op::Less => binary_num!(<, Value::Bool),
            op::Add => match (peek!(1), peek!(0)) {
                (Value::Number(a), Value::Number(b)) => {
                    stack.pop();
                    let top = stack.len() - 1;
                    stack[top] = Value::Number(a + b);
                }
                (Value::Str(a), Value::Str(b)) => {
                    let mut s = String::with_capacity(a.chars.len() + b.chars.len());
                    s.push_str(&a.chars);
                    s.push_str(&b.chars);
                    let r = match strings.intern(cx, &s) {
                        Ok(r) => r,
                        Err(e) => runtime_error!("{}", alloc_message(e)),
                    };
                    stack.pop();
                    let top = stack.len() - 1;
                    stack[top] = Value::Str(r);
                }
                _ => runtime_error!("Operands must be two numbers or two strings."),
            },
            op::Subtract => binary_num!(-, Value::Number),
            op::Multiply => binary_num!(*, Value::Number),
            op::Divide => binary_num!(/, Value::Number),
            op::Not => {
                let top = stack.len() - 1;
                stack[top] = Value::Bool(stack[top].is_falsey());
            }
            op::Negate => {
                let top = stack.len() - 1;
                match stack[top] {
                    Value::Number(n) => stack[top] = Value::Number(-n),
                    _ => runtime_error!("Operand must be a number."),
                }
            }
            op::Print => {
                let v = pop!();
                // A closed stdout (e.g. a pipe) is not the script's error.
                let _ = writeln!(out, "{v}");
            }
            op::Jump => {
                let off = read_u16!();
                ip += off;
            }
            op::JumpIfFalse => {
                let off = read_u16!();
                if peek!(0).is_falsey() {
                    ip += off;
                }
            }
            op::Loop => {
                let off = read_u16!();
                ip -= off;
            }
            op::Call => {
                let argc = read_byte!() as usize;
                let callee = peek!(argc);
                call_value!(callee, argc);
            }
            op::Invoke => {
                let name = read_string!();
                let argc = read_byte!() as usize;
                let Value::Instance(inst) = peek!(argc) else {
                    runtime_error!("Only instances have methods.");
                };
                let field = inst.fields.borrow().get(name);
                match field {
                    Some(v) => {
                        let slot = stack.len() - argc - 1;
                        stack[slot] = v;
                        call_value!(v, argc);
                    }
                    None => invoke_from_class!(inst.class, name, argc),
                }
            }
            op::SuperInvoke => {
                let name = read_string!();
                let argc = read_byte!() as usize;
                let Value::Class(superclass) = pop!() else {
                    unreachable!("the compiler loads a class for 'super'");
                };
                invoke_from_class!(superclass, name, argc);
            }
            op::Closure => {
                let Value::Function(function) = read_constant!() else {
                    unreachable!("the compiler emits a function constant for a closure");
                };
                let n = function.upvalue_count as usize;
                let mut upvalues = Vec::with_capacity(n);
                for _ in 0..n {
                    let is_local = read_byte!() == 1;
                    let index = read_byte!() as usize;
                    if is_local {
                        let slot = (base + index) as u32;
                        let pos = open.partition_point(|u| open_slot(u) < slot);
                        let up = match open.get(pos) {
                            Some(&u) if open_slot(&u) == slot => u,
                            _ => {
                                let u = match cx.alloc(Upvalue {
                                    loc: GcRefCell::new(UpLoc::Open(slot)),
                                }) {
                                    Ok(u) => u,
                                    Err(e) => runtime_error!("{}", alloc_message(e)),
                                };
                                open.insert(pos, u);
                                u
                            }
                        };
                        upvalues.push(up);
                    } else {
                        upvalues.push(closure.upvalues[index]);
                    }
                }
                let c = alloc!(Closure { function, upvalues });
                stack.push(Value::Closure(c));
            }
            op::CloseUpvalue => {
                let last = (stack.len() - 1) as u32;
                close_upvalues(cx, open, stack, last);
                stack.pop();
            }
            op::Return => {
                let result = pop!();
                close_upvalues(cx, open, stack, base as u32);
                frames.pop();
                if frames.is_empty() {
                    stack.clear();
                    return Ok(Step::Done);
                }
                stack.truncate(base);
                stack.push(result);
                load_frame!();
            }
            op::Class => {
                let name = read_string!();
                let class = alloc!(Class {
                    name,
                    methods: GcRefCell::new(Table::default()),
                });
                stack.push(Value::Class(class));
            }
            op::Inherit => {
                let Value::Class(superclass) = peek!(1) else {
                    runtime_error!("Superclass must be a class.");
                };
                let Value::Class(subclass) = peek!(0) else {
                    unreachable!("the compiler loads the subclass");
                };
                let methods: Vec<_> = superclass.methods.borrow().iter().collect();
                let mut sub = subclass.methods.borrow_mut(cx);
                for (k, v) in methods {
                    sub.set(k, v);
                }
                drop(sub);
                stack.pop();
            }
            op::Method => {
                let name = read_string!();
                let method = peek!(0);
                let Value::Class(class) = peek!(1) else {
                    unreachable!("the compiler loads the class");
                };
                class.methods.borrow_mut(cx).set(name, method);
                stack.pop();
            }
            _ => unreachable!("the compiler emits only opcodes"),
        }
    }
    save_ip!();
    Ok(Step::Yield)
}

/// The stack slot of an open upvalue (closed ones, never in the open
/// list, sort last).
fn open_slot(u: &Gc<'_, Upvalue<'_>>) -> u32 {
    match *u.loc.borrow() {
        UpLoc::Open(s) => s,
        UpLoc::Closed(_) => u32::MAX,
    }
}

/// clox's `closeUpvalues`: closes every open upvalue at or above `last`.
#[inline]
fn close_upvalues<'gc>(
    cx: &'gc Scope<'_>,
    open: &mut Vec<Gc<'gc, Upvalue<'gc>>>,
    stack: &[Value<'gc>],
    last: u32,
) {
    while let Some(&u) = open.last() {
        let s = open_slot(&u);
        if s < last {
            break;
        }
        *u.loc.borrow_mut(cx) = UpLoc::Closed(stack[s as usize]);
        open.pop();
    }
}
