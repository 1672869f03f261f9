"""The JSON shapes clients read, as pydantic models, field for field.

Each model mirrors what huggingface_hub parses (ModelInfo, RepoSibling, RepoFile,
RepoFolder, GitRefs, GitCommitInfo, CommitInfo, the LFS batch answer, the Xet token). Keys
that are not Python names are aliases (``_id``, ``lastModified``). A key the client treats
as "absent means no" (``lfs`` of a regular file, ``size`` of a sibling listed without
blobs) is left out of the JSON when it is None, as huggingface.co does, instead of being
sent as ``null``: ``Shape.omit_when_none`` names them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializationInfo, model_serializer
from pydantic.functional_serializers import SerializerFunctionWrapHandler


class Shape(BaseModel):
    """A JSON answer; built by field name, written by alias (``serialization_alias``)."""

    omit_when_none: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        data = handler(self)
        for name in self.omit_when_none:
            field = type(self).model_fields[name]
            key = field.serialization_alias if info.by_alias and field.serialization_alias else name
            if isinstance(data, dict) and data.get(key) is None:
                data.pop(key, None)
        return data


# -- users ------------------------------------------------------------------------------


class AccessToken(Shape):
    display_name: str = Field(serialization_alias="displayName")
    role: str


class AuthInfo(Shape):
    type: str = "access_token"
    access_token: AccessToken = Field(serialization_alias="accessToken")


class OrgEntry(Shape):
    """One org of ``whoami``'s ``orgs``: ``hf auth whoami`` prints the names."""

    type: str = "org"
    id: str
    name: str
    fullname: str
    role_in_org: str = Field(serialization_alias="roleInOrg")


class WhoAmI(Shape):
    """``HfApi.whoami``: a user, their orgs; the token's name and scope under ``auth``."""

    type: str = "user"
    id: str
    name: str
    fullname: str
    email: str | None = None
    email_verified: bool = Field(default=False, serialization_alias="emailVerified")
    is_pro: bool = Field(default=False, serialization_alias="isPro")
    orgs: list[OrgEntry] = Field(default_factory=list)
    auth: AuthInfo


# -- repos ------------------------------------------------------------------------------


class CreatedRepo(Shape):
    url: str
    name: str
    id: str


class RepoSettings(Shape):
    private: bool


class SiblingLfs(Shape):
    sha256: str
    size: int
    pointer_size: int = Field(serialization_alias="pointerSize")


class Sibling(Shape):
    """One file of ``ModelInfo.siblings``; size, blob id and LFS only with ``blobs=1``."""

    omit_when_none = frozenset({"size", "blob_id", "lfs"})
    rfilename: str
    size: int | None = None
    blob_id: str | None = Field(default=None, serialization_alias="blobId")
    lfs: SiblingLfs | None = None


class RepoInfo(Shape):
    """``HfApi.model_info`` / ``repo_info`` at one revision."""

    mongo_id: str = Field(serialization_alias="_id")
    id: str
    model_id: str = Field(serialization_alias="modelId")
    author: str
    sha: str
    last_modified: str = Field(serialization_alias="lastModified")
    created_at: str = Field(serialization_alias="createdAt")
    private: bool
    visibility: Literal["private", "public"]
    gated: bool = False
    disabled: bool = False
    downloads: int = 0
    likes: int = 0
    tags: list[str] = Field(default_factory=list)
    siblings: list[Sibling]


class EntryLfs(Shape):
    oid: str
    size: int
    pointer_size: int = Field(serialization_alias="pointerSize")


class LastCommit(Shape):
    """The newest commit that changed an entry (``list_repo_tree(expand=True)``)."""

    id: str
    title: str
    date: str


class TreeEntry(Shape):
    """A ``RepoFile`` (``type="file"``, ``lfs`` when it is one) or a ``RepoFolder``;
    ``lastCommit`` only when asked for (``expand``)."""

    omit_when_none = frozenset({"lfs", "last_commit"})
    type: Literal["file", "directory"]
    oid: str
    size: int
    path: str
    lfs: EntryLfs | None = None
    last_commit: LastCommit | None = Field(default=None, serialization_alias="lastCommit")


class YamlProblem(Shape):
    message: str


class YamlCheck(Shape):
    errors: list[YamlProblem]
    warnings: list[YamlProblem] = Field(default_factory=list)


# -- refs and commits -------------------------------------------------------------------


class GitRef(Shape):
    name: str
    ref: str
    target_commit: str = Field(serialization_alias="targetCommit")


class GitRefs(Shape):
    """``HfApi.list_repo_refs``; ``pullRequests`` only when asked for (always empty)."""

    omit_when_none = frozenset({"pull_requests"})
    branches: list[GitRef] = Field(default_factory=list)
    tags: list[GitRef] = Field(default_factory=list)
    converts: list[GitRef] = Field(default_factory=list)
    pull_requests: list[GitRef] | None = Field(default=None, serialization_alias="pullRequests")


class Author(Shape):
    user: str
    avatar: str | None = None


class Formatted(Shape):
    title: str
    message: str


class CommitEntry(Shape):
    """One ``GitCommitInfo`` of ``HfApi.list_repo_commits``."""

    omit_when_none = frozenset({"formatted"})
    id: str
    title: str
    message: str
    authors: list[Author]
    date: str
    formatted: Formatted | None = None


class UploadMode(Shape):
    """One file of a preupload answer. ``oid`` is what the repo holds at that path now
    (sha256 for LFS, git blob id otherwise): the client drops a file whose local oid
    equals it, so an unchanged ``upload_folder`` commits nothing."""

    omit_when_none = frozenset({"oid"})
    path: str
    upload_mode: Literal["lfs", "regular"] = Field(serialization_alias="uploadMode")
    should_ignore: bool = Field(default=False, serialization_alias="shouldIgnore")
    oid: str | None = None


class PreuploadAnswer(Shape):
    files: list[UploadMode]


class SquashAnswer(Shape):
    commit_id: str = Field(serialization_alias="commitId")


class CommitAnswer(Shape):
    """``CommitInfo`` of ``HfApi.create_commit``."""

    commit_url: str = Field(serialization_alias="commitUrl")
    commit_oid: str = Field(serialization_alias="commitOid")
    pull_request_url: str | None = Field(default=None, serialization_alias="pullRequestUrl")
    success: bool = True


# -- LFS and Xet ------------------------------------------------------------------------


class LfsAction(Shape):
    href: str
    header: dict[str, str] = Field(default_factory=dict)


class LfsError(Shape):
    code: int
    message: str


class LfsObject(Shape):
    """One object of a batch answer: nothing to do, actions to take, or an error."""

    omit_when_none = frozenset({"authenticated", "actions", "error"})
    oid: str
    size: int
    authenticated: bool | None = None
    actions: dict[str, LfsAction] | None = None
    error: LfsError | None = None


class LfsBatch(Shape):
    transfer: Literal["basic", "multipart", "xet"]
    objects: list[LfsObject]
    hash_algo: str = "sha256"


class LfsStored(Shape):
    oid: str
    size: int


class XetToken(Shape):
    access_token: str = Field(serialization_alias="accessToken")
    exp: int
    cas_url: str = Field(serialization_alias="casUrl")


class XorbStored(Shape):
    was_inserted: bool


class ShardStored(Shape):
    result: int


# -- request bodies ---------------------------------------------------------------------


class Request(BaseModel):
    """A JSON body a client sends; fields the server does not use are ignored."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, extra="ignore")


class RepoRequest(Request):
    """``/api/repos/create``, ``/api/repos/delete``, ``.../settings``.

    Newer clients send ``visibility`` ("private"/"public"), older ones ``private``.
    """

    name: str = ""
    organization: str | None = None
    type: str | None = None
    private: bool | None = None
    visibility: str | None = None

    @property
    def wants_private(self) -> bool:
        if self.visibility is not None:
            return self.visibility != "public"
        return bool(self.private)

    @property
    def sets_visibility(self) -> bool:
        return self.private is not None or self.visibility is not None


class YamlRequest(Request):
    content: str = ""


class MoveRequest(Request):
    """``/api/repos/move`` (``move_repo``): ids as ``namespace/name``."""

    from_repo: str = Field(alias="fromRepo")
    to_repo: str = Field(alias="toRepo")
    type: str | None = None


class SquashRequest(Request):
    message: str | None = None


class BranchRequest(Request):
    starting_point: str | None = Field(default=None, alias="startingPoint")


class TagRequest(Request):
    tag: str = ""
    message: str | None = None


class PreuploadFile(Request):
    path: str
    size: int = 0
    sample: str | None = None


class PreuploadRequest(Request):
    """``gitIgnore`` is the ``.gitignore`` the same commit adds, when it adds one."""

    files: list[PreuploadFile] = Field(default_factory=list)
    git_ignore: str | None = Field(default=None, alias="gitIgnore")


class LfsObjectRequest(Request):
    oid: Any = ""
    size: Any = -1


class LfsRef(Request):
    name: str = "main"


class LfsBatchRequest(Request):
    operation: str | None = None
    transfers: list[str] | None = None
    ref: LfsRef | None = None
    objects: list[LfsObjectRequest] = Field(default_factory=list)


class LfsPart(Request):
    part_number: int = Field(alias="partNumber")
    etag: str = ""


class LfsCompleteRequest(Request):
    parts: list[LfsPart] = Field(default_factory=list)
