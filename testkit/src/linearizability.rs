//! A linearizability checker for histories recorded against a real
//! server: Wing and Gong's search for an order of the calls that respects
//! real time and that a sequential model accepts, with Lowe's memo of the
//! (calls placed, model state) pairs already found to lead nowhere, so
//! that histories with much overlap are checked in moments, not in an
//! exponential search.

use std::collections::HashSet;
use std::hash::Hash;

/// The sequential object a history must behave as.
pub trait Model: Clone + Eq + Hash {
    type Op: std::fmt::Debug;
    type Ret: PartialEq + std::fmt::Debug;
    fn apply(&mut self, op: &Self::Op) -> Self::Ret;
}

struct Call<M: Model> {
    client: usize,
    op: M::Op,
    ret: Option<M::Ret>,
    invoked: u64,
    returned: u64,
}

/// The calls of some clients, each client one call at a time.
pub struct History<M: Model> {
    calls: Vec<Call<M>>,
    clock: u64,
}

impl<M: Model> Default for History<M> {
    fn default() -> Self {
        History {
            calls: Vec::new(),
            clock: 0,
        }
    }
}

/// The most calls one history may hold (they are placed in a bit set).
pub const MAX_CALLS: usize = 128;

impl<M: Model> History<M> {
    /// `client` starts `op`.
    pub fn invoke(&mut self, client: usize, op: M::Op) {
        assert!(
            self.calls.len() < MAX_CALLS,
            "a history holds at most {MAX_CALLS} calls"
        );
        assert!(
            !self
                .calls
                .iter()
                .any(|c| c.client == client && c.ret.is_none()),
            "client {client} has a call in flight"
        );
        self.clock += 1;
        self.calls.push(Call {
            client,
            op,
            ret: None,
            invoked: self.clock,
            returned: u64::MAX,
        });
    }

    /// `client`'s call in flight answers `ret`.
    pub fn answer(&mut self, client: usize, ret: M::Ret) {
        self.clock += 1;
        let call = self
            .calls
            .iter_mut()
            .find(|c| c.client == client && c.ret.is_none())
            .unwrap_or_else(|| panic!("client {client} has no call in flight"));
        call.ret = Some(ret);
        call.returned = self.clock;
    }

    /// The answer of call `i` (in the order of their starts).
    pub fn ret(&self, i: usize) -> Option<&M::Ret> {
        self.calls.get(i)?.ret.as_ref()
    }

    /// The history as lines in real-time order, for a failure message.
    pub fn timeline(&self) -> String {
        let mut events: Vec<(u64, String)> = Vec::new();
        for c in &self.calls {
            events.push((c.invoked, format!("client {} starts {:?}", c.client, c.op)));
            if let Some(ret) = &c.ret {
                events.push((c.returned, format!("client {} answer {ret:?}", c.client)));
            }
        }
        events.sort_by_key(|e| e.0);
        events
            .into_iter()
            .map(|e| e.1)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// An order of the answered calls that respects real time (a call
    /// answered before another started comes first) and that `start`
    /// accepts, answer for answer: the indexes of the calls in that order;
    /// `None` when there is none (the history is not linearizable).
    pub fn linearize(&self, start: &M) -> Option<Vec<usize>> {
        let calls: Vec<usize> = (0..self.calls.len())
            .filter(|&i| self.calls[i].ret.is_some())
            .collect();
        let mut order = Vec::with_capacity(calls.len());
        let mut dead_ends = HashSet::new();
        self.place(&calls, 0, start, &mut order, &mut dead_ends)
            .then_some(order)
    }

    /// Depth-first: places one more of `calls` (those not in `placed`)
    /// after `order`, the model being `state`.
    fn place(
        &self,
        calls: &[usize],
        placed: u128,
        state: &M,
        order: &mut Vec<usize>,
        dead_ends: &mut HashSet<(u128, M)>,
    ) -> bool {
        if order.len() == calls.len() {
            return true;
        }
        if dead_ends.contains(&(placed, state.clone())) {
            return false;
        }
        let pending = calls.iter().copied().filter(|&i| placed & (1 << i) == 0);
        // A call can go next only if it started before every pending call
        // was answered.
        let first_answer = pending.clone().map(|i| self.calls[i].returned).min();
        let first_answer = first_answer.unwrap_or(u64::MAX);
        for i in pending.filter(|&i| self.calls[i].invoked < first_answer) {
            let call = &self.calls[i];
            let mut next = state.clone();
            if Some(&next.apply(&call.op)) != call.ret.as_ref() {
                continue;
            }
            order.push(i);
            if self.place(calls, placed | (1 << i), &next, order, dead_ends) {
                return true;
            }
            order.pop();
        }
        dead_ends.insert((placed, state.clone()));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register of one value.
    #[derive(Clone, PartialEq, Eq, Hash)]
    struct Register(u32);

    #[derive(Debug)]
    enum Op {
        Write(u32),
        Read,
    }

    impl Model for Register {
        type Op = Op;
        type Ret = Option<u32>;
        fn apply(&mut self, op: &Op) -> Option<u32> {
            match op {
                Op::Write(v) => {
                    self.0 = *v;
                    None
                }
                Op::Read => Some(self.0),
            }
        }
    }

    #[test]
    fn overlapping_calls_may_take_effect_in_either_order() {
        let mut h = History::default();
        h.invoke(0, Op::Write(1));
        h.invoke(1, Op::Read);
        h.answer(1, Some(1)); // saw the write still in flight: fine
        h.answer(0, None);
        assert!(h.linearize(&Register(0)).is_some());
    }

    #[test]
    fn a_stale_read_after_a_write_is_refused() {
        let mut h = History::default();
        h.invoke(0, Op::Write(1));
        h.answer(0, None);
        h.invoke(1, Op::Read);
        h.answer(1, Some(0)); // the write was done before: stale
        assert!(h.linearize(&Register(0)).is_none());
        assert!(h.timeline().contains("client 1 answer Some(0)"));
    }

    #[test]
    fn many_overlapping_clients_are_checked_quickly() {
        // 30 rounds of 4 overlapping writes, then a read no write made: a
        // search without the memo would try all 24^30 orders first.
        let mut h = History::default();
        for round in 0..30 {
            for client in 0..4 {
                h.invoke(client, Op::Write(round));
            }
            for client in 0..4 {
                h.answer(client, None);
            }
        }
        h.invoke(0, Op::Read);
        h.answer(0, Some(1000));
        assert!(h.linearize(&Register(0)).is_none());
    }
}
