select
    '{{ pc_pkg.package_version("pc_pkg") }}' as pkg_version,
    '{{ pc_pkg.package_version("package_corners") }}' as root_version,
    '{{ pc_pkg.package_version("dbt") }}' as dbt_version,
    '{{ pc_pkg.package_version("not_installed") }}' as missing_version,
    '{{ builtins.ref.config.project_name }}' as project_name
