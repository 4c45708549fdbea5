//! `PipelineGraph`: named stages wired by name, checked as a whole, compiled into a tree of
//! `StageExec` plan nodes and run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use datafusion_execution::TaskContext;
use datafusion_physical_plan::ExecutionPlan;
use futures::TryStreamExt;

use crate::{MetricsReport, RunError, Stage, StageError, StageExec, StageMetrics, StageReport};

/// A problem in the wiring or the schemas of a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Two stages have the same name.
    #[error("stage name `{stage}` is used twice")]
    DuplicateName {
        /// The name.
        stage: String,
    },
    /// A stage names an input that does not exist.
    #[error("stage `{stage}`: unknown input `{input}`")]
    UnknownInput {
        /// The stage.
        stage: String,
        /// The unknown input name.
        input: String,
    },
    /// Stages feed each other in a loop.
    #[error("stage `{stage}` is part of a cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// A stage of the cycle.
        stage: String,
        /// The stages of the cycle, in order.
        cycle: Vec<String>,
    },
    /// A stage's inputs do not have what it needs.
    #[error("stage `{stage}`: {error}")]
    Schema {
        /// The stage.
        stage: String,
        /// What is wrong with its input.
        error: StageError,
    },
}

impl GraphError {
    /// The stage the error is about.
    pub fn stage(&self) -> &str {
        match self {
            GraphError::DuplicateName { stage }
            | GraphError::UnknownInput { stage, .. }
            | GraphError::Cycle { stage, .. }
            | GraphError::Schema { stage, .. } => stage,
        }
    }
}

/// Channel and batch sizes of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Batches buffered per edge before the producer waits (backpressure).
    pub channel_capacity: usize,
    /// Telescope events per batch produced by sources.
    pub batch_size: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            channel_capacity: 4,
            batch_size: 256,
        }
    }
}

/// Named stages and their inputs.
#[derive(Debug, Default)]
pub struct PipelineGraph {
    nodes: Vec<GraphNode>,
}

#[derive(Debug)]
struct GraphNode {
    name: String,
    stage: Arc<dyn Stage>,
    inputs: Vec<String>,
}

impl PipelineGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a stage reading from the stages named in `inputs`.
    pub fn add_stage(
        &mut self,
        name: impl Into<String>,
        stage: Arc<dyn Stage>,
        inputs: Vec<String>,
    ) {
        self.nodes.push(GraphNode {
            name: name.into(),
            stage,
            inputs,
        });
    }

    /// The stage named `name`, if there is one (benchmarks reuse stages built from a
    /// pipeline file in a graph of their own).
    pub fn stage(&self, name: &str) -> Option<&Arc<dyn Stage>> {
        self.nodes
            .iter()
            .find(|node| node.name == name)
            .map(|node| &node.stage)
    }

    /// Stage names, in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| n.name.as_str())
    }

    /// Checks names, wiring and schemas; returns every problem found. On success, the
    /// output schema of every stage by name.
    pub fn check(&self) -> Result<HashMap<String, SchemaRef>, Vec<GraphError>> {
        let (order, mut errors) = self.topological_order();
        let mut schemas: HashMap<String, SchemaRef> = HashMap::new();
        for &index in &order {
            let node = &self.nodes[index];
            let inputs: Option<Vec<SchemaRef>> = node
                .inputs
                .iter()
                .map(|input| schemas.get(input).cloned())
                .collect();
            // A stage whose input failed is not checked again: one error per cause.
            let Some(inputs) = inputs else { continue };
            let result = node
                .stage
                .arity()
                .check(inputs.len())
                .and_then(|()| node.stage.output_schema(&inputs));
            match result {
                Ok(schema) => {
                    schemas.insert(node.name.clone(), schema);
                }
                Err(error) => errors.push(GraphError::Schema {
                    stage: node.name.clone(),
                    error,
                }),
            }
        }
        if errors.is_empty() {
            Ok(schemas)
        } else {
            Err(errors)
        }
    }

    /// Compiles the graph into `StageExec` plan nodes. The roots are the stages nobody
    /// consumes (normally the sinks).
    pub fn compile(&self, options: RunOptions) -> Result<CompiledPipeline, Vec<GraphError>> {
        let schemas = self.check()?;
        let (order, _) = self.topological_order();
        let mut consumers: HashMap<&str, usize> = HashMap::new();
        for node in &self.nodes {
            for input in &node.inputs {
                *consumers.entry(input.as_str()).or_default() += 1;
            }
        }
        let mut built: HashMap<&str, Arc<StageExec>> = HashMap::new();
        let mut stages = Vec::with_capacity(order.len());
        for index in order {
            let node = &self.nodes[index];
            let children = node
                .inputs
                .iter()
                .map(|input| Arc::clone(&built[input.as_str()]) as Arc<dyn ExecutionPlan>)
                .collect();
            let exec = Arc::new(StageExec::new(
                node.name.clone(),
                Arc::clone(&node.stage),
                children,
                Arc::clone(&schemas[&node.name]),
                options.channel_capacity,
                options.batch_size,
                consumers.get(node.name.as_str()).copied().unwrap_or(1),
            ));
            built.insert(node.name.as_str(), Arc::clone(&exec));
            stages.push(exec);
        }
        let roots = stages
            .iter()
            .filter(|exec| !consumers.contains_key(exec.stage_name()))
            .map(|exec| Arc::clone(exec) as Arc<dyn ExecutionPlan>)
            .collect();
        Ok(CompiledPipeline { roots, stages })
    }

    /// The stage graph in Graphviz DOT: one box per stage, labelled with name and kind.
    pub fn to_dot(&self) -> String {
        let mut dot = String::from("digraph pipeline {\n  rankdir=LR;\n  node [shape=box];\n");
        for node in &self.nodes {
            let shape = match node.stage.role() {
                crate::StageRole::Source => "cds",
                crate::StageRole::Sink => "folder",
                crate::StageRole::Transform => "box",
            };
            dot.push_str(&format!(
                "  \"{}\" [label=\"{}\\n({})\", shape={shape}];\n",
                node.name,
                node.name,
                node.stage.kind()
            ));
        }
        for node in &self.nodes {
            for input in &node.inputs {
                dot.push_str(&format!("  \"{input}\" -> \"{}\";\n", node.name));
            }
        }
        dot.push_str("}\n");
        dot
    }

    /// Kahn's algorithm over the stages; reports duplicate names, unknown inputs and cycles.
    fn topological_order(&self) -> (Vec<usize>, Vec<GraphError>) {
        let mut errors = Vec::new();
        let mut index_of: HashMap<&str, usize> = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if index_of.insert(node.name.as_str(), i).is_some() {
                errors.push(GraphError::DuplicateName {
                    stage: node.name.clone(),
                });
            }
        }
        let mut pending = vec![0usize; self.nodes.len()];
        let mut consumers = vec![Vec::new(); self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            for input in &node.inputs {
                match index_of.get(input.as_str()) {
                    Some(&j) => {
                        pending[i] += 1;
                        consumers[j].push(i);
                    }
                    None => errors.push(GraphError::UnknownInput {
                        stage: node.name.clone(),
                        input: input.clone(),
                    }),
                }
            }
        }
        let mut ready: Vec<usize> = (0..self.nodes.len()).filter(|&i| pending[i] == 0).collect();
        ready.reverse();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(i) = ready.pop() {
            order.push(i);
            for &c in consumers[i].iter().rev() {
                pending[c] -= 1;
                if pending[c] == 0 {
                    ready.push(c);
                }
            }
        }
        let mut reported = vec![false; self.nodes.len()];
        for start in 0..self.nodes.len() {
            if pending[start] == 0 || reported[start] {
                continue;
            }
            if let Some(cycle) = self.cycle_through(start, &index_of) {
                for name in &cycle {
                    reported[index_of[name.as_str()]] = true;
                }
                errors.push(GraphError::Cycle {
                    stage: self.nodes[start].name.clone(),
                    cycle,
                });
            }
        }
        (order, errors)
    }

    /// The cycle reached by following inputs from `start`, if `start` lies on one.
    fn cycle_through(&self, start: usize, index_of: &HashMap<&str, usize>) -> Option<Vec<String>> {
        let mut path = vec![start];
        let mut visited = vec![false; self.nodes.len()];
        visited[start] = true;
        // Depth-first search along inputs; the graph is small (tens of stages).
        fn search(
            graph: &PipelineGraph,
            index_of: &HashMap<&str, usize>,
            start: usize,
            path: &mut Vec<usize>,
            visited: &mut [bool],
        ) -> bool {
            let Some(&current) = path.last() else {
                return false;
            };
            for input in &graph.nodes[current].inputs {
                let Some(&next) = index_of.get(input.as_str()) else {
                    continue;
                };
                if next == start {
                    return true;
                }
                if !visited[next] {
                    visited[next] = true;
                    path.push(next);
                    if search(graph, index_of, start, path, visited) {
                        return true;
                    }
                    path.pop();
                }
            }
            false
        }
        if !search(self, index_of, start, &mut path, &mut visited) {
            return None;
        }
        // `path` follows inputs (upstream); the cycle in data-flow order runs the other way.
        let name = |i: usize| self.nodes[i].name.clone();
        let mut names = vec![name(start)];
        names.extend(path[1..].iter().rev().map(|&i| name(i)));
        names.push(name(start));
        Some(names)
    }
}

/// A pipeline ready to run: its plan nodes in topological order.
#[derive(Debug)]
pub struct CompiledPipeline {
    roots: Vec<Arc<dyn ExecutionPlan>>,
    stages: Vec<Arc<StageExec>>,
}

impl CompiledPipeline {
    /// The plan roots (stages nobody consumes).
    pub fn roots(&self) -> &[Arc<dyn ExecutionPlan>] {
        &self.roots
    }

    /// Every stage node, in topological order.
    pub fn stages(&self) -> &[Arc<StageExec>] {
        &self.stages
    }

    /// Live metrics of every stage: (name, metrics), in topological order.
    pub fn live_metrics(&self) -> Vec<(String, Arc<StageMetrics>)> {
        self.stages
            .iter()
            .map(|s| (s.stage_name().to_string(), Arc::clone(s.stage_metrics())))
            .collect()
    }

    /// Runs the pipeline to completion (must be called inside a tokio runtime). The first
    /// error cancels every stage and is returned with the failing stage's name. Only when
    /// every stage has finished without error are the sinks told to publish
    /// ([`Stage::commit`]); otherwise they discard what they prepared ([`Stage::abort`]).
    pub async fn run(&self) -> Result<MetricsReport, RunError> {
        let start = Instant::now();
        match self.run_stages().await {
            Ok(()) => {
                for exec in &self.stages {
                    exec.stage().commit().map_err(|error| RunError::Stage {
                        stage: exec.stage_name().to_string(),
                        message: error.to_string(),
                        kind: error.kind(),
                    })?;
                }
                Ok(self.report(start.elapsed().as_secs_f64()))
            }
            Err(error) => {
                for exec in &self.stages {
                    exec.stage().abort();
                }
                Err(error)
            }
        }
    }

    /// Runs every stage until the sinks' streams end.
    async fn run_stages(&self) -> Result<(), RunError> {
        let context = Arc::new(TaskContext::default());
        let streams = self
            .roots
            .iter()
            .map(|root| root.execute(0, Arc::clone(&context)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(RunError::from_datafusion)?;
        let drains = streams
            .into_iter()
            .map(|stream| stream.try_for_each(|_| async { Ok(()) }));
        futures::future::try_join_all(drains)
            .await
            .map_err(RunError::from_datafusion)?;
        Ok(())
    }

    /// The metrics so far, with the given wall time.
    pub fn report(&self, wall_seconds: f64) -> MetricsReport {
        MetricsReport {
            wall_seconds,
            stages: self
                .stages
                .iter()
                .map(|s| StageReport {
                    name: s.stage_name().to_string(),
                    kind: s.stage().kind().to_string(),
                    metrics: s.stage_metrics().snapshot(),
                })
                .collect(),
        }
    }
}
