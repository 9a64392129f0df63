"""`nas search` and `nas space show`."""

from __future__ import annotations

from pathlib import Path

import click

from nas.cli_common import print_json, print_table
from nas.recipe import MAX_SEED
from nas.search.config import (AUTO_COUNT, AUTO_RESOLUTION, AUTO_SCORE, AUTO_WORKERS, CONFIRM_BY, ENGINES, EVALUATORS,
                               OBJECTIVES, PRUNERS, SAMPLERS, SCHEDULERS, SCORES)
from nas.search.config import SearchConfig as Defaults  # the settings' defaults, declared there once


@click.command()
@click.option("--target", default="pixel", show_default=True, help="Latency table to score against.")
@click.option("--budget", required=True, help="Latency budget: 60ms, 60 or 0.06s.")
@click.option("--space", "space_path", default=None, help="Search-space YAML (default search_spaces/mobilenet_v3.yaml).")
@click.option("--resolution", default=AUTO_RESOLUTION, show_default=True,
              help="Input resolutions (rho) searched: auto (with --score proxy the space's largest alone, since a short "
                   "training overrates smaller images: experiments/truth/README.md; with the ImageNet estimate every "
                   "rho), all, or values of the space such as 192,224.")
@click.option("--trials", default=Defaults.trials, show_default=True, help="Trained trials (over-budget rejections do not count).")
@click.option("--time-limit", default=None, help="Stop starting trials after this long: 45m, 1h, 600s.")
@click.option("--dataset", default=None, help="cifar10 (shipped, default), fashion-mnist, imagefolder:PATH.")
@click.option("--data-dir", default=None, help="Folder with the dataset files (see README).")
@click.option("--recipe", "recipe_path", default=None, help="Proxy recipe YAML (default experiments/proxy_recipe.yaml).")
@click.option("--epochs", default=None, type=int, help="Override the recipe's epochs.")
@click.option("--device", default=None,
              help="Where trials train: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps "
                   "(default: the recipe's, auto).")
@click.option("--trials-per-gpu", default=Defaults.trials_per_gpu, show_default=True, type=click.IntRange(min=1),
              help="Trials sharing one GPU: Optuna workers are spread over the GPUs this many to "
                   "each; a Ray trial asks for 1/K of a GPU.")
@click.option("--seed", default=Defaults.seed, show_default=True, type=click.IntRange(0, MAX_SEED),
              help="Sampler and training seed.")
@click.option("--sampler", type=click.Choice(SAMPLERS), default=Defaults.sampler, show_default=True, help="Optuna sampler.")
@click.option("--objective", type=click.Choice(OBJECTIVES), default=Defaults.objective, show_default=True,
              help="Accuracy under a hard latency budget, MnasNet's reward, or accuracy and latency.")
@click.option("--pruner", type=click.Choice(PRUNERS), default=Defaults.pruner, show_default=True,
              help="Early stopping of poor trials (Optuna engine).")
@click.option("--score", type=click.Choice((AUTO_SCORE, *SCORES)), default=Defaults.score, show_default=True,
              help="What trials are ranked by: the ImageNet top-1 estimated from proxy accuracy and the "
                   "network's cost (fitted for the default recipe on CIFAR-10; see docs/training.md), or the "
                   "proxy accuracy itself. auto: the estimate where it was fitted for the recipe, else proxy.")
@click.option("--confirm", default=Defaults.confirm, show_default=True, type=click.IntRange(min=0),
              help="Finalists (the best trials within budget, plus the best baseline) retrained at more "
                   "seeds before the winner is named; 0: name the single-seed winner.")
@click.option("--confirm-seeds", default=AUTO_COUNT, show_default=True,
              help="More seeds each finalist is trained at; the winner has the best mean. auto: 1 after rungs "
                   "(the top rung's training is the first seed), else 2.")
@click.option("--confirm-by", type=click.Choice(CONFIRM_BY), default=Defaults.confirm_by, show_default=True,
              help="What names the winner among the finalists: the run's score (with the default, the ImageNet "
                   "estimate), or their proxy accuracy alone (the trained signal, which orders networks of equal "
                   "latency better: experiments/truth/README.md).")
@click.option("--rungs", default=AUTO_COUNT, show_default=True,
              help="After the trials, successive halving over the training budget: the best 1/ETA of the "
                   "completed trials within budget (plus the best baseline) trained again with ETA x the "
                   "images (then epochs), up to this many rungs; the winner comes from the top rung. 0: off. "
                   "auto: 2 with --score proxy (winners that hold up at 20x training: "
                   "experiments/proxy_winner), else 0.")
@click.option("--eta", default=Defaults.eta, show_default=True, type=int,
              help="Rung factor: each rung keeps 1/ETA of the trials and trains them with ETA x the budget.")
@click.option("--evaluator", type=click.Choice(EVALUATORS), default=Defaults.evaluator, show_default=True,
              help="How a candidate gets its accuracy: trained with the recipe, or scored in about a second as a "
                   "subnet of a trained supernet (--supernet; `nas supernet train`, docs/supernet.md).")
@click.option("--supernet", "supernet", default=None, type=click.Path(file_okay=False),
              help="The folder `nas supernet train` wrote (--evaluator supernet).")
@click.option("--workers", default=AUTO_WORKERS, show_default=True,
              help="Processes sharing the study storage: N, or auto (the CPU cores divided by the recipe's "
                   "threads, at least 1; with GPUs, at most --trials-per-gpu per GPU).")
@click.option("--storage", default=None, help="Optuna storage URL (default: sqlite in the run folder).")
@click.option("--study", default=None,
              help="Study name in --storage (default: nas in the run folder's study.db, nas-<run folder name> "
                   "in a shared --storage). Searches sharing a study must have the same settings.")
@click.option("--engine", type=click.Choice(ENGINES), default=Defaults.engine, show_default=True, help="Search engine.")
@click.option("--ray-address", default=None, help="Ray cluster to join (auto or HOST:PORT); default: start locally.")
@click.option("--scheduler", type=click.Choice(SCHEDULERS), default=Defaults.scheduler, show_default=True,
              help="Ray engine early stopping.")
@click.option("--out", default=None, help="Run folder (default runs/<target>-<budget>ms-<sampler>-s<seed>).")
@click.option("--resume", is_flag=True, help="Continue the search in --out (re-running into it does the same).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON at the end.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--allow-foreign-table", is_flag=True, expose_value=False,
              callback=lambda ctx, _, value: ctx.meta.update(allow_foreign_table=value),
              help="Search with a latency table measured on another machine (refused by default).")
def search(target, budget, space_path, resolution, trials, time_limit, dataset, data_dir, recipe_path, epochs, device,
           trials_per_gpu, seed, sampler, objective, pruner, score, confirm, confirm_seeds, confirm_by, rungs, eta,
           evaluator, supernet,
           workers, storage, study, engine, ray_address, scheduler, out, resume,
           as_json, no_progress):
    """Find the most accurate architecture whose predicted latency on TARGET fits the budget."""
    from nas.recipe import load_recipe, recipe_to_dict
    from nas.search import (SearchConfig, holding_run_folder, ignored_settings, parse_budget, parse_duration,
                            prepare, run_search)
    from nas.search.config import parse_auto_count, parse_resolution, parse_workers
    from nas.search.policy import resolve_rungs, resolve_score
    from nas.space import DEFAULT_SPACE

    from nas.latency.predict import require_here
    require_here(target, click.get_current_context().meta.get("allow_foreign_table", False))
    budget_ms = parse_budget(budget)
    recipe = load_recipe(recipe_path, dataset=dataset, data_dir=data_dir, epochs=epochs, seed=seed,
                         device=device)
    config = SearchConfig(target=target, budget_ms=budget_ms,
                          out=out or f"runs/{target}-{budget_ms:g}ms-{sampler}-s{seed}",
                          space=str(space_path or DEFAULT_SPACE), recipe=recipe_to_dict(recipe),
                          trials=trials, time_limit_s=parse_duration(time_limit), seed=seed, sampler=sampler,
                          objective=objective, pruner=pruner, workers=parse_workers(workers), storage=storage,
                          engine=engine,
                          ray_address=ray_address, scheduler=scheduler, study=study, score=score,
                          trials_per_gpu=trials_per_gpu, confirm=confirm,
                          confirm_seeds=parse_auto_count(confirm_seeds, "--confirm-seeds"), confirm_by=confirm_by,
                          rungs=parse_auto_count(rungs, "--rungs"), eta=eta, evaluator=evaluator, supernet=supernet,
                          resolution=parse_resolution(resolution))
    resolved = resolve_score(resolve_rungs(config))  # rungs first: `auto` follows the score as asked
    fell_back = config.score == AUTO_SCORE and resolved.score == "proxy"
    config = resolved
    asked, given = config, _given_settings(click.get_current_context())
    with holding_run_folder(Path(config.out)):
        config, resumed = prepare(config, resume, given)
        if resumed:
            ignored = ignored_settings(config, asked, given)
            kept = f" with its saved settings: {'; '.join(ignored)}" if ignored else ""
            click.echo(f"resuming the search in {config.out}{kept}", err=True)
        summary = run_search(config, progress=not no_progress)
    if fell_back and not resumed:  # after the search, so a refusal on the way stays one line
        click.echo("--score auto: trials were ranked by proxy accuracy (the shipped ImageNet estimate was "
                   "fitted for the default recipe on CIFAR-10, not this recipe)", err=True)
    if as_json:
        print_json(summary)
    else:
        click.echo((Path(config.out) / "summary.md").read_text())


# The search settings each option sets (see nas.search.prepare): a rerun into a run folder
# compares only the settings its command line gives.
_SETTINGS_OF_OPTION = {"target": ("target",), "budget": ("budget_ms",), "space_path": ("space",),
                       "recipe_path": ("recipe",), "dataset": ("recipe.dataset",), "data_dir": ("recipe.data_dir",),
                       "epochs": ("recipe.epochs",), "device": ("recipe.device",), "seed": ("seed", "recipe.seed"), "sampler": ("sampler",),
                       "objective": ("objective",), "pruner": ("pruner",), "score": ("score",), "storage": ("storage", "study"),
                       "study": ("study",), "engine": ("engine",), "scheduler": ("scheduler",),
                       "rungs": ("rungs",), "eta": ("eta",), "evaluator": ("evaluator",), "supernet": ("supernet",),
                       "resolution": ("resolution",)}


def _given_settings(ctx: click.Context) -> set[str]:
    from click.core import ParameterSource

    return {setting for option, settings in _SETTINGS_OF_OPTION.items()
            if ctx.get_parameter_source(option) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
            for setting in settings}


@click.group()
def space():
    """Search spaces."""


@space.command("show")
@click.argument("file", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def space_show(file, as_json):
    """Print the stages, the choices and the size of a search space."""
    from nas.space import load_space

    s = load_space(file)
    rows = [{"stage": i, "stride": st.stride, "depth": _list(st.depth), "width": _list(st.width),
             "kernel": _list(st.kernel), "expand": _list(st.expand), "se": _list(st.se), "act": _list(st.act)}
            for i, st in enumerate(s.stages)]
    info = {"name": s.name, "path": s.path, "size": s.size(), "resolution": list(s.resolution),
            "width_mult": list(s.width_mult), "head_hidden": list(s.head_hidden), "stages": rows}
    if as_json:
        print_json(info)
        return
    click.echo(f"{s.name} ({s.path})")
    click.echo(f"resolution (rho): {_list(s.resolution)}   width_mult (alpha): {_list(s.width_mult)}   "
               f"head hidden: {_list(s.head_hidden)}   head conv: {s.head_conv_ratio:g} x last width")
    print_table(rows, list(rows[0]))
    click.echo(f"size: {s.size():,} architectures ({s.size():.2e})")


def _list(values) -> str:
    return "{" + ", ".join(str(v).lower() if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)
                           for v in values) + "}"


def register(main: click.Group) -> None:
    main.add_command(search)
    main.add_command(space)
