//! Connections spread evenly over the worker loops (Envoy's "exact balance").
//!
//! Every worker accepts from the one listening socket, and the kernel wakes each waiting loop for
//! a new connection: which one takes it is a race. A connection stays on the loop that serves it
//! for its life, so connections that land on one loop (a client's pool opening, an ingress
//! reconnecting, two agents that started together) keep that loop busy while another idles.
//! Measured with two workers and two connections (wrk, 8 s, four runs): both connections landed
//! on one loop in two runs, which served 4.4k and 4.9k calls a second against 6.4k and 6.8k
//! when they were split. So a worker that accepts a connection while another worker serves fewer
//! hands it over, through that worker's inbox; with it, four runs out of four split them (5.9k to
//! 6.6k calls a second). The price is one message between threads per connection, never per call.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// How many connections each worker serves now.
#[derive(Clone)]
pub struct Connections {
    open: Arc<[AtomicUsize]>,
}

impl Connections {
    pub fn new(workers: NonZeroUsize) -> Self {
        Self {
            open: (0..workers.get()).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// Connections served now, by worker index (for the metrics scrape).
    pub fn per_worker(&self) -> Vec<usize> {
        self.open
            .iter()
            .map(|open| open.load(Ordering::Relaxed))
            .collect()
    }

    /// The worker that serves a connection `here` accepted: `here`, unless another worker serves
    /// fewer. Counted at once, so that a connection accepted on another loop at the same moment
    /// sees it.
    fn assign(&self, here: usize) -> Served {
        let mut worker = here;
        let mut fewest = self.open[here].load(Ordering::Relaxed);
        for (other, open) in self.open.iter().enumerate() {
            let open = open.load(Ordering::Relaxed);
            if open < fewest {
                (worker, fewest) = (other, open);
            }
        }
        self.serve_on(worker)
    }

    fn serve_on(&self, worker: usize) -> Served {
        self.open[worker].fetch_add(1, Ordering::Relaxed);
        Served {
            open: self.open.clone(),
            worker,
        }
    }
}

/// A connection's place in its worker's count, given back when the connection ends (drop).
pub struct Served {
    open: Arc<[AtomicUsize]>,
    worker: usize,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.open[self.worker].fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection accepted on one loop, on its way to the loop that will serve it. It travels as
/// a std socket: a tokio one is registered with the loop that accepted it.
pub struct Handoff {
    tcp: std::net::TcpStream,
    peer: SocketAddr,
    served: Served,
}

/// A connection for this loop to serve, counted in its worker's share if it has one.
pub struct Incoming {
    pub tcp: TcpStream,
    pub peer: SocketAddr,
    pub served: Option<Served>,
}

/// One worker's side of the balance: the shared counts, every worker's inbox, and its own.
pub struct Balancer {
    worker: usize,
    connections: Connections,
    inboxes: Arc<[mpsc::UnboundedSender<Handoff>]>,
    inbox: mpsc::UnboundedReceiver<Handoff>,
}

/// One balancer per worker, all sharing `connections`.
pub fn balancers(connections: &Connections) -> Vec<Balancer> {
    let (inboxes, receivers): (Vec<_>, Vec<_>) = (0..connections.open.len())
        .map(|_| mpsc::unbounded_channel())
        .unzip();
    let inboxes: Arc<[_]> = inboxes.into();
    receivers
        .into_iter()
        .enumerate()
        .map(|(worker, inbox)| Balancer {
            worker,
            connections: connections.clone(),
            inboxes: inboxes.clone(),
            inbox,
        })
        .collect()
}

impl Balancer {
    /// A connection this worker accepted: served here (`Some`), or handed to the worker that
    /// serves fewest (`None`).
    pub fn place(&self, tcp: TcpStream, peer: SocketAddr) -> std::io::Result<Option<Incoming>> {
        let served = self.connections.assign(self.worker);
        if served.worker == self.worker {
            return Ok(Some(Incoming {
                tcp,
                peer,
                served: Some(served),
            }));
        }
        let handoff = Handoff {
            tcp: tcp.into_std()?,
            peer,
            served,
        };
        match self.inboxes[handoff.served.worker].send(handoff) {
            Ok(()) => Ok(None),
            // That worker has stopped taking connections (shutdown): this one serves it.
            Err(mpsc::error::SendError(handoff)) => self.keep(handoff).map(Some),
        }
    }

    /// The next connection another worker handed to this one.
    pub async fn handed(&mut self) -> Option<Incoming> {
        loop {
            let handoff = self.inbox.recv().await?;
            match self.keep(handoff) {
                Ok(incoming) => return Some(incoming),
                Err(err) => tracing::debug!(error = %err, "a connection handed over was lost"),
            }
        }
    }

    /// Takes no more connections from other workers and gives back those already handed over,
    /// for this worker to serve through its shutdown.
    pub fn close(&mut self) -> Vec<Incoming> {
        self.inbox.close();
        let mut last = Vec::new();
        while let Ok(handoff) = self.inbox.try_recv() {
            match self.keep(handoff) {
                Ok(incoming) => last.push(incoming),
                Err(err) => tracing::debug!(error = %err, "a connection handed over was lost"),
            }
        }
        last
    }

    /// Serves `handoff` on this worker's loop (which must be the one running).
    fn keep(&self, handoff: Handoff) -> std::io::Result<Incoming> {
        let served = match handoff.served.worker == self.worker {
            true => handoff.served,
            false => self.connections.serve_on(self.worker),
        };
        Ok(Incoming {
            tcp: TcpStream::from_std(handoff.tcp)?,
            peer: handoff.peer,
            served: Some(served),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connections(workers: usize) -> Connections {
        Connections::new(NonZeroUsize::new(workers).unwrap())
    }

    #[test]
    fn a_connection_goes_to_the_worker_serving_fewest_and_stays_where_it_was_accepted_on_a_tie() {
        let connections = connections(3);
        let first = connections.assign(1);
        assert_eq!(
            first.worker, 1,
            "a tie keeps the connection where it was accepted"
        );
        let second = connections.assign(1);
        assert_eq!(second.worker, 0);
        let third = connections.assign(0);
        assert_eq!(third.worker, 2);
        assert_eq!(connections.per_worker(), [1, 1, 1]);
        drop(second);
        assert_eq!(connections.per_worker(), [0, 1, 1]);
        assert_eq!(connections.assign(2).worker, 0);
    }
}
