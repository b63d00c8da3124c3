"""The report (`make paper-figures`, `python -m nncompress.report`): the paper's tables and figures regenerated from
the results store, with the paper's conclusions re-tested. It reads only the local results store (never W&B).

Per paper table and protocol found, `tableN_<protocol>.md` and `.csv` (`<protocol>` a variant's label: its name
and what its runs set away from it, `paper_lr=1.0`, see `nncompress.replicas`): rows = edges
removed, columns = datasets, our mean ± std over n seeds (sample std, as the paper; "k at chance" where replicas
learned nothing), the paper's value and the difference, in percent; cells without runs show as "—"; each row ends
with its replicas' mean parameters, FLOPs, compression and speedup. A pruning method
the paper did not test, and any method on a deep net, gets a table of the same shape per net, ours only
(`table_<method>_<hidden>_<protocol>`, `<hidden>` as `300-100` for a deep net),
its curves in Figures 2-5 after the paper's and claims of its own. Figures 1-5 (`figN_<protocol>.png` / `.pdf`): test
accuracy vs parameters, log x, one curve per method and hidden size, with the Pareto front of each ConvNet variant on
the same data (selected on validation accuracy when the ConvNets have a validation split) as a line, and on 2-5 the
paper's cells beside ours; per dataset with artefacts (`export=true`), accuracy vs bytes on disk for every method
and combination with the Pareto frontier over all of them and Deep Compression's point as an anchor
(`bytes_<dataset>_<protocol>.png`), and per dataset accuracy vs FLOPs (`flops_<dataset>_<protocol>.png`); each only
where its variant has runs of its own. Then `fidelity.md`, `summary.md` (with the best at each byte budget) and all
of it as one page, `index.html`.

Modules, each building only on those before it: `paper` (the paper's values and methods), `stats` (cell statistics,
the test of a difference), `claims` (verdicts), `markup` (Jinja2 for HTML), `tables`, `ondisk` (the report in bytes:
cells per combination, frontier, budgets, anchors), `fidelity`, `style` (colours,
markers, log axes), `figures`, `summary`, `page` (index.html, template `page.html`), `cli` (the command line; a report
replaces the last one whole).
"""
