# PlatformIO extra script written by tinysmile: the strict flags (-Wall -Wextra -Werror and
# the C standard) apply to tinysmile's own C sources only, through a build middleware, so a
# warning inside the Arduino core or a library never fails the build.
Import("env")  # noqa: F821 - provided by PlatformIO's SCons

flags = env.GetProjectOption("custom_tinysmile_strict_flags", "").split()  # noqa: F821
dirs = env.GetProjectOption("custom_tinysmile_strict_dirs", "").split()  # noqa: F821
c_only = [f for f in flags if f.startswith("-std=c")]
common = [f for f in flags if not f.startswith("-std=c")]


def strict(env, node):
    # C only: the .cpp port files include the Arduino core's and libraries' headers, whose
    # warnings are not ours to fail on. The C is also built with -Werror in tinysmile's CI.
    if not str(node).endswith(".c"):
        return node
    return env.Object(node, CCFLAGS=env["CCFLAGS"] + common + c_only)


for d in dirs:
    env.AddBuildMiddleware(strict, f"*/src/{d}/*")  # noqa: F821
